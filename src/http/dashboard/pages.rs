//! The dashboard's pages, rendered on the server. Every value from outside (a device id,
//! an error) goes through `escape`; scripts and styles are files of their own (the
//! Content-Security-Policy allows nothing inline).

use std::fmt::Write;

use super::live::{AlertLine, Snapshot};

/// Text made safe to put in HTML, in an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Eliot</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/dashboard.js" defer></script>
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title)
    )
}

/// The login form; `error`: why the last try failed.
pub fn login(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    page(
        "Log in",
        &format!(
            r#"<header><h1>Eliot</h1></header>
<main>
<h2>Log in</h2>
{error}<form method="post" action="/login">
<label for="token">API token (<code>read</code> or <code>admin</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<p><button type="submit">Log in</button></p>
</form>
</main>"#
        ),
    )
}

/// The header of a page behind the login: where to go, the feed's state, and the logout
/// form when there is a session (`csrf`: its token).
fn header(csrf: Option<&str>) -> String {
    let logout = csrf
        .map(|csrf| {
            format!(
                r#"<form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form>"#,
                escape(csrf)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<header><h1>Eliot</h1><nav><a href="/">Fleet</a> · <a href="/alerts">Alerts</a></nav><span id="live" aria-live="polite">connecting</span>{logout}</header>"#
    )
}

/// One raised alert's row; with `ack` (the CSRF token, or "" without login), a firing
/// one not yet acknowledged has its acknowledge button. The script makes the same rows.
fn alert_row(a: &AlertLine, ack: Option<&str>) -> String {
    let button = match ack {
        Some(csrf) if a.state == "firing" && !a.acknowledged => format!(
            r#"<form method="post" action="/alerts/ack"><input type="hidden" name="rule" value="{rule}"><input type="hidden" name="device_id" value="{device}"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Acknowledge</button></form>"#,
            rule = escape(&a.rule),
            device = escape(&a.device_id),
            csrf = escape(csrf),
        ),
        _ => String::new(),
    };
    format!(
        r#"<tr data-alert="{rule}/{device}"><td>{rule}</td><td>{device}</td><td>{state}</td><td class="wide">{since}</td><td class="wide">{value}</td><td>{acked}</td><td>{button}</td></tr>"#,
        rule = escape(&a.rule),
        device = escape(&a.device_id),
        state = escape(a.state),
        since = escape(&a.since),
        value = a.value.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
        acked = if a.acknowledged { "acknowledged" } else { "no" },
    )
}

/// The alerts raised now, kept live by the script. `ack`: the viewer may acknowledge
/// (an admin, or anyone without login), with this CSRF token ("" without login).
pub fn alerts(now: &Snapshot, csrf: Option<&str>, ack: Option<&str>) -> String {
    let rows: String = now.alerts.iter().map(|a| alert_row(a, ack)).collect();
    let may_ack = ack
        .map(|csrf| format!(r#" data-csrf="{}""#, escape(csrf)))
        .unwrap_or_default();
    page(
        "Alerts",
        &format!(
            r#"{header}
<main{may_ack}>
<h2>Alerts raised now</h2>
<p>Firing: <strong id="firing">{firing}</strong> · as of <span id="updated">{at}</span></p>
<table>
<thead><tr><th scope="col">Rule</th><th scope="col">Device</th><th scope="col">State</th><th scope="col" class="wide">Since</th><th scope="col" class="wide">Value</th><th scope="col">Acknowledged</th><th scope="col"></th></tr></thead>
<tbody id="alerts">{rows}</tbody>
</table>
</main>"#,
            header = header(csrf),
            firing = now.firing,
            at = escape(&now.at),
        ),
    )
}

/// The fleet at a glance, as it is now; the script keeps it live. `csrf`: the session's
/// token for the logout form (`None` without login).
pub fn fleet(now: &Snapshot, csrf: Option<&str>) -> String {
    let mut rows = String::new();
    for d in &now.devices {
        let _ = write!(
            rows,
            r#"<tr data-device="{id}"><td>{id}</td><td>{status}</td><td>{seen}</td><td class="wide">{readings}</td><td class="wide">{dead}</td></tr>"#,
            id = escape(&d.device_id),
            status = escape(d.status),
            seen = escape(d.last_seen.as_deref().unwrap_or("—")),
            readings = d.readings,
            dead = d.dead_letters,
        );
    }
    let mut statuses = String::new();
    for (status, n) in &now.statuses {
        let _ = write!(
            statuses,
            r#"<li>{status} <strong data-status="{status}">{n}</strong></li>"#
        );
    }
    page(
        "Fleet",
        &format!(
            r#"{header}
<main>
<ul class="figures">
<li>Devices <strong id="total">{total}</strong></li>
{statuses}
<li>Alerts firing <strong id="firing">{firing}</strong></li>
<li>Readings a second <strong id="rate">{rate}</strong></li>
<li>Dead letters <strong id="dead_letters">{dead_letters}</strong></li>
</ul>
<p>Store: <span id="store">{store}</span> · as of <span id="updated">{at}</span></p>
<h2>Devices, last heard first</h2>
<table>
<thead><tr><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Last seen</th><th scope="col" class="wide">Readings</th><th scope="col" class="wide">Dead letters</th></tr></thead>
<tbody id="devices">{rows}</tbody>
</table>
</main>"#,
            header = header(csrf),
            total = now.total,
            firing = now.firing,
            rate = now.ingest_rate,
            dead_letters = now.dead_letters,
            store = escape(&now.store),
            at = escape(&now.at),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::live::DeviceLine;
    use super::*;

    #[test]
    fn what_comes_from_outside_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let now = Snapshot {
            store: "<i>full</i>".into(),
            devices: vec![DeviceLine {
                device_id: "<script>alert(1)</script>".into(),
                status: "online",
                last_seen: None,
                readings: 3,
                dead_letters: 0,
            }],
            ..Snapshot::default()
        };
        let page = fleet(&now, Some("c\"srf"));
        assert!(page.contains("&lt;i&gt;full&lt;/i&gt;"));
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains(r#"value="c&quot;srf""#));
        assert!(login(Some("<b>bad</b>")).contains("&lt;b&gt;bad&lt;/b&gt;"));
    }
}
