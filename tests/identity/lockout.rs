//! The failed-login lock-out, against an Eliot process: it is keyed by the remote address
//! and the device claimed, so one stale device behind a NAT locks out only itself.

use super::*;
use v4::ConnectReturnCode::{BadUserNamePassword, NotAuthorized, Success};

/// Behind one address (127.0.0.2, a site's NAT), a stale device keeps sending an old
/// secret until it is locked out. A device with the right secret behind the same address
/// is still served, and so is a device with a verified client certificate, even after
/// password failures in its own name from there; the stale device stays refused, unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_device_behind_a_nat_locks_out_only_itself() {
    let Some(bin) = client("lock-out per device") else {
        return;
    };
    let pki = Pki::new();
    let eliot = Outside::start(
        AuthMode::PasswordOrCertificate,
        Some(&pki),
        "max_failed_logins = 3",
    );
    let good = eliot.provision("robot_good");
    eliot.provision("robot_stale");
    provision_certificate(eliot.data.path(), "robot_cert");
    let (nat, addr) = ([127, 0, 0, 2], eliot.eliot.addr);
    for _ in 0..3 {
        let (code, _) = login_from(nat, addr, "robot_stale", "an-old-secret").await;
        assert_eq!(code, Some(BadUserNamePassword));
    }
    let (code, _) = login_from(nat, addr, "robot_stale", "an-old-secret").await;
    assert_eq!(code, Some(NotAuthorized), "the stale device is locked out");

    let (code, _) = login_from(nat, addr, "robot_good", &good).await;
    assert_eq!(
        code,
        Some(Success),
        "the right secret behind the same address"
    );

    // Passwords guessed in the certificate device's name lock that name out for passwords.
    for _ in 0..3 {
        login_from(nat, addr, "robot_cert", "a-guess").await;
    }
    let (code, _) = login_from(nat, addr, "robot_cert", "a-guess").await;
    assert_eq!(
        code,
        Some(NotAuthorized),
        "guessing its password is locked out"
    );

    let mut args = tls_args(&pki, Some(&pki.client("robot_cert")));
    args.extend(["-i", "robot_cert", "-A", "127.0.0.2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tls_port = eliot.tls_addr.unwrap().port();
    let out = tokio::task::block_in_place(|| publish(&bin, tls_port, "robot_cert", 0, &args));
    assert!(
        out.status.success(),
        "a verified certificate behind the same address, after password failures in its \
         name: {}",
        said(&out)
    );
    let (code, _) = login_from(nat, addr, "robot_stale", "an-old-secret").await;
    assert_eq!(
        code,
        Some(NotAuthorized),
        "the stale device is still locked out"
    );
}
