//! Loading the configuration: the layers, the environment, and every error named.

use super::*;
use std::io::Write;

fn with_file(text: &str) -> (tempfile::NamedTempFile, Sources) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let sources = Sources {
        file: Some(file.path().to_owned()),
        ..Sources::default()
    };
    (file, sources)
}

#[test]
fn the_embedded_defaults_load_in_every_environment() {
    for env in ["dev", "test", "prod"] {
        let sources = Sources {
            env: Some(env.into()),
            ..Sources::default()
        };
        let config = Config::load(&sources).unwrap_or_else(|e| panic!("{env}: {e:?}"));
        assert_eq!(config.mqtt.max_packet_size, 256 * 1024);
    }
}

#[test]
fn an_unknown_key_names_the_file_and_the_key() {
    let (file, sources) = with_file("[mqtt]\nlisten_addr = \"127.0.0.1:1\"\n");
    let errors = Config::load(&sources).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.starts_with(&file.path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("unknown field `listen_addr`"), "{text}");
    assert!(text.contains("`mqtt`"), "{text}");
}

#[test]
fn a_bad_duration_names_the_key_and_what_was_expected() {
    let (_file, sources) = with_file("[store]\nbatch_delay = \"soon\"\n");
    let text = Config::load(&sources).unwrap_err()[0].to_string();
    assert!(text.contains("`store.batch_delay`"), "{text}");
    assert!(text.contains("duration"), "{text}");
}

#[test]
fn environment_variables_override_the_files() {
    let sources = Sources {
        overrides: vec![
            ("ELIOT_MQTT_ADDR".into(), "127.0.0.1:9999".into()),
            ("ELIOT_HTTP_ADDR".into(), "127.0.0.1:9998".into()),
            ("ELIOT_DATA_DIR".into(), "/tmp/elsewhere".into()),
        ],
        ..Sources::default()
    };
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.mqtt.listen.port(), 9999);
    assert_eq!(config.http.listen.port(), 9998);
    assert_eq!(config.store.data_dir, PathBuf::from("/tmp/elsewhere"));
    let bad = Sources {
        overrides: vec![("ELIOT_MQTT_ADDR".into(), "nowhere".into())],
        ..Sources::default()
    };
    let text = Config::load(&bad).unwrap_err()[0].to_string();
    assert!(
        text.starts_with("environment variable ELIOT_MQTT_ADDR: `mqtt.listen`"),
        "{text}"
    );
}

#[test]
fn semantic_problems_are_all_reported() {
    let (_file, sources) =
        with_file("[processors]\ncount = 0\n[ingest]\ntopic = \"devices/+/x\"\n");
    let errors = Config::load(&sources).unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["ingest.topic", "processors.count"]);
}

#[test]
fn zero_durations_and_inverted_bounds_are_refused_by_key() {
    let (_file, sources) = with_file(
        "[mqtt]\nconnect_timeout = \"0s\"\n\
         [breakers.device]\nwindow = \"0s\"\ncooldown = \"1h\"\ncooldown_max = \"1m\"\n\
         [supervision]\nbackoff_initial = \"20s\"\n",
    );
    let errors = Config::load(&sources).unwrap_err();
    let found: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.key, e.message))
        .collect();
    assert_eq!(
        found,
        [
            "mqtt.connect_timeout: expected a duration above zero",
            "supervision.backoff_initial: expected at most supervision.backoff_max",
            "breakers.device.window: expected a duration above zero",
            "breakers.device.cooldown: expected at most breakers.device.cooldown_max",
        ]
    );
}

#[test]
fn an_unknown_environment_is_an_error() {
    let sources = Sources {
        env: Some("staging".into()),
        ..Sources::default()
    };
    assert!(Config::load(&sources).unwrap_err()[0]
        .message
        .contains("unknown environment `staging`"));
}

#[test]
fn the_effective_configuration_round_trips_through_toml() {
    let config = Config::load(&Sources::default()).unwrap();
    let (_file, sources) = with_file(&config.to_toml());
    Config::load(&sources).unwrap();
}
