//! The dashboard's pages, rendered on the server. Every value from outside (a device id,
//! an error) goes through `escape`; scripts and styles are files of their own (the
//! Content-Security-Policy allows nothing inline).

use std::fmt::Write;

use eliot_actors::{
    format_micros, AlertEventView, AlertStateRow, DeadLetterSummary, ReplayOutcome, SilenceRow,
    StoredDeadLetter,
};

use super::live::{AlertLine, DeviceLine, Snapshot};

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
    page_with(title, "", body)
}

/// A page whose `head` adds to the common one (more scripts and styles, all files of
/// this origin).
pub fn page_with(title: &str, head: &str, body: &str) -> String {
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
{head}</head>
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

/// The header of a page behind the login: where to go, the state of the page's live feed
/// (`feed`: its path; the script follows it), and the logout form when there is a
/// session (`csrf`: its token).
pub fn header(csrf: Option<&str>, feed: Option<&str>) -> String {
    let logout = csrf
        .map(|csrf| {
            format!(
                r#"<form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><button type="submit">Log out</button></form>"#,
                escape(csrf)
            )
        })
        .unwrap_or_default();
    let live = feed
        .map(|feed| {
            format!(
                r#"<span id="live" data-feed="{}" aria-live="polite">connecting</span>"#,
                escape(feed)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<header><h1>Eliot</h1><nav><a href="/">Fleet</a> · <a href="/fleet/devices">Devices</a> · <a href="/alerts">Alerts</a> · <a href="/dead-letters">Dead letters</a></nav>{live}{logout}</header>"#
    )
}

/// A table row of `cells`, each escaped.
fn row(cells: &[&str]) -> String {
    let mut row = String::from("<tr>");
    for c in cells {
        let _ = write!(row, "<td>{}</td>", escape(c));
    }
    row.push_str("</tr>");
    row
}

/// What a device's page shows as of its load.
pub struct DevicePage<'a> {
    pub id: &'a str,
    /// Its facts (name, label, value); none when the fleet keeps no state of it.
    pub facts: &'a [(&'static str, &'static str, String)],
    pub raised: &'a [AlertStateRow],
    pub history: &'a [AlertEventView],
    pub dead_letters: &'a [DeadLetterSummary],
}

/// A device's page: its facts as of now, its charts and last readings (drawn by
/// `device.js` from the device's feed), its alerts raised now, its last alert events and
/// its last dead letters.
pub fn device(shown: &DevicePage, csrf: Option<&str>) -> String {
    let id = escape(shown.id);
    let mut listed = String::new();
    for (name, label, value) in shown.facts {
        let _ = write!(
            listed,
            r#"<dt>{label}</dt><dd data-fact="{name}">{}</dd>"#,
            escape(value)
        );
    }
    let facts = match shown.facts.is_empty() {
        true => "<p>The fleet keeps no state of this device (it is off, or the device was forgotten): its stored readings only.</p>".to_owned(),
        false => format!(r#"<dl class="facts">{listed}</dl>"#),
    };
    let alerts: String = shown
        .raised
        .iter()
        .map(|a| {
            row(&[
                &a.rule,
                a.phase.unwrap_or("over"),
                &format_micros(a.since),
                &a.value.map_or("—".to_owned(), |v| v.to_string()),
                if a.acked_at.is_some() {
                    "acknowledged"
                } else {
                    "no"
                },
            ])
        })
        .collect();
    let events: String = shown
        .history
        .iter()
        .map(|e| {
            let e = &e.event;
            row(&[&format_micros(e.at), &e.rule, e.kind, &e.summary])
        })
        .collect();
    let mut dead_letters = String::new();
    for d in shown.dead_letters {
        let _ = write!(
            dead_letters,
            r#"<tr><td><a href="/dead-letters/{n}">{n}</a></td><td>{at}</td><td>{reason}</td></tr>"#,
            n = d.id,
            at = escape(&d.received_at),
            reason = escape(&d.reason),
        );
    }
    let none = |rows: String| match rows.is_empty() {
        true => r#"<tr><td colspan="5">none</td></tr>"#.to_owned(),
        false => rows,
    };
    page_with(
        &format!("Device {id}"),
        r#"<link rel="stylesheet" href="/assets/vendor/uPlot.min.css">
<script src="/assets/vendor/uPlot.iife.min.js" defer></script>
<script src="/assets/device.js" defer></script>
"#,
        &format!(
            r#"{header}
<main>
<h2>Device <span id="device">{id}</span></h2>
<h3>Readings, live</h3>
<p>A chart per sensor type, a line per numeric field of its data (each drawn with its own dash), the last {points} points.</p>
<section id="charts" aria-label="charts"></section>
<h3>Last readings</h3>
<table>
<thead><tr><th scope="col">Time</th><th scope="col">Sensor type</th><th scope="col">Data</th></tr></thead>
<tbody id="readings"></tbody>
</table>
<h3>Presence and data quality</h3>
{facts}
<h3>Alerts raised now</h3>
<table>
<thead><tr><th scope="col">Rule</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Value</th><th scope="col">Acknowledged</th></tr></thead>
<tbody id="device-alerts">{alerts}</tbody>
</table>
<h3>Its last alert events</h3>
<table>
<thead><tr><th scope="col">At</th><th scope="col">Rule</th><th scope="col">Event</th><th scope="col">Summary</th></tr></thead>
<tbody id="device-alert-events">{events}</tbody>
</table>
<h3>Its last dead letters</h3>
<table>
<thead><tr><th scope="col">Id</th><th scope="col">Received</th><th scope="col">Reason</th></tr></thead>
<tbody id="device-dead-letters">{dead_letters}</tbody>
</table>
<p><small>Charts by <a href="/assets/vendor/uPlot.LICENSE">uPlot</a> (MIT).</small></p>
</main>"#,
            header = header(csrf, Some(&format!("/live/devices/{id}"))),
            points = super::device::CHARTED,
            alerts = none(alerts),
            events = none(events),
            dead_letters = none(dead_letters),
        ),
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
        r#"<tr data-alert="{rule}/{device}"><td>{rule}</td><td><a href="/fleet/devices/{device}">{device}</a></td><td>{state}</td><td class="wide">{since}</td><td class="wide">{value}</td><td>{acked}</td><td>{button}</td></tr>"#,
        rule = escape(&a.rule),
        device = escape(&a.device_id),
        state = escape(a.state),
        since = escape(&a.since),
        value = a.value.map(|v| v.to_string()).unwrap_or_else(|| "—".into()),
        acked = if a.acknowledged { "acknowledged" } else { "no" },
    )
}

/// The alerts page: the alerts raised now, kept live by the script; the silences in
/// force and the last events, as of the page's load. `act`: the viewer may acknowledge
/// and silence (an admin, or anyone without login), with this CSRF token ("" without
/// login).
pub fn alerts(
    now: &Snapshot,
    history: &[AlertEventView],
    silences: &[SilenceRow],
    csrf: Option<&str>,
    act: Option<&str>,
) -> String {
    let rows: String = now.alerts.iter().map(|a| alert_row(a, act)).collect();
    let may_act = act
        .map(|csrf| format!(r#" data-csrf="{}""#, escape(csrf)))
        .unwrap_or_default();
    let mut events = String::new();
    for e in history {
        let e = &e.event;
        let _ = write!(
            events,
            r#"<tr data-event="{n}"><td class="wide">{at}</td><td>{rule}</td><td><a href="/fleet/devices/{device}">{device}</a></td><td>{kind}{silenced}</td><td class="wide">{summary}</td></tr>"#,
            n = e.id,
            at = escape(&format_micros(e.at)),
            rule = escape(&e.rule),
            device = escape(&e.device_id),
            kind = e.kind,
            silenced = if e.silenced { " (silenced)" } else { "" },
            summary = escape(&e.summary),
        );
    }
    let mut held = String::new();
    for q in silences {
        let end = act
            .map(|csrf| {
                format!(
                    r#"<form method="post" action="/alerts/unsilence"><input type="hidden" name="id" value="{}"><input type="hidden" name="csrf" value="{}"><button type="submit">End</button></form>"#,
                    q.id,
                    escape(csrf)
                )
            })
            .unwrap_or_default();
        let _ = write!(
            held,
            r#"<tr data-silence="{n}"><td>{rule}</td><td>{device}</td><td>{until}</td><td class="wide">{comment}</td><td>{end}</td></tr>"#,
            n = q.id,
            rule = escape(q.rule.as_deref().unwrap_or("every rule")),
            device = escape(q.device_id.as_deref().unwrap_or("every device")),
            until = escape(&format_micros(q.until)),
            comment = escape(&q.comment),
        );
    }
    let form = act.map(silence_form).unwrap_or_default();
    page(
        "Alerts",
        &format!(
            r#"{header}
<main{may_act}>
<h2>Alerts raised now</h2>
<p>Firing: <strong id="firing">{firing}</strong> · as of <span id="updated">{at}</span></p>
<table>
<thead><tr><th scope="col">Rule</th><th scope="col">Device</th><th scope="col">State</th><th scope="col" class="wide">Since</th><th scope="col" class="wide">Value</th><th scope="col">Acknowledged</th><th scope="col"></th></tr></thead>
<tbody id="alerts">{rows}</tbody>
</table>
<h2>Silences in force</h2>
<p>A silence records the events it covers without notifying them.</p>
<table>
<thead><tr><th scope="col">Rule</th><th scope="col">Device</th><th scope="col">Until</th><th scope="col" class="wide">Comment</th><th scope="col"></th></tr></thead>
<tbody id="silences">{held}</tbody>
</table>
{form}
<h2>History, newest first</h2>
<table>
<thead><tr><th scope="col" class="wide">At</th><th scope="col">Rule</th><th scope="col">Device</th><th scope="col">Event</th><th scope="col" class="wide">Summary</th></tr></thead>
<tbody id="alert-events">{events}</tbody>
</table>
</main>"#,
            header = header(csrf, Some("/live")),
            firing = now.firing,
            at = escape(&now.at),
        ),
    )
}

/// How long a silence made on the page holds, by the form's choice.
pub const SILENCE_HOURS: [(u32, &str); 4] = [
    (1, "1 hour"),
    (4, "4 hours"),
    (24, "a day"),
    (168, "a week"),
];

fn silence_form(csrf: &str) -> String {
    let options: String = SILENCE_HOURS
        .iter()
        .map(|(hours, words)| format!(r#"<option value="{hours}">{words}</option>"#))
        .collect();
    format!(
        r#"<form id="silence" method="post" action="/alerts/silence">
<input type="hidden" name="csrf" value="{csrf}">
<label for="silence-rule">Rule (empty: every rule)</label> <input id="silence-rule" name="rule" maxlength="64" pattern="[a-z0-9_\-]{{1,64}}">
<label for="silence-device">Device (empty: every device)</label> <input id="silence-device" name="device_id" maxlength="64" pattern="[A-Za-z0-9_.:\-]{{1,64}}">
<label for="silence-hours">For</label> <select id="silence-hours" name="hours">{options}</select>
<label for="silence-comment">Comment</label> <input id="silence-comment" name="comment" maxlength="500">
<p><button type="submit">Silence</button></p>
</form>"#,
        csrf = escape(csrf)
    )
}

/// A device's row, as the fleet page and the device list show it (the script makes the
/// same on the fleet page).
fn device_row(d: &DeviceLine) -> String {
    format!(
        r#"<tr data-device="{id}"><td><a href="/fleet/devices/{id}">{id}</a></td><td>{status}</td><td>{seen}</td><td class="wide">{readings}</td><td class="wide">{dead}</td></tr>"#,
        id = escape(&d.device_id),
        status = escape(d.status),
        seen = escape(d.last_seen.as_deref().unwrap_or("—")),
        readings = d.readings,
        dead = d.dead_letters,
    )
}

/// What the device list was asked for, as its form shows it again.
pub struct DeviceSearch<'a> {
    pub prefix: &'a str,
    pub status: Option<&'a str>,
}

/// A page of the device list, by id; `next`: the query string of the next page.
pub fn devices(
    found: &[DeviceLine],
    search: &DeviceSearch,
    next: Option<&str>,
    csrf: Option<&str>,
) -> String {
    let rows: String = found.iter().map(device_row).collect();
    let mut options = String::from(r#"<option value="">any</option>"#);
    for status in ["online", "late", "offline", "quarantined"] {
        let selected = if search.status == Some(status) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            r#"<option value="{status}"{selected}>{status}</option>"#
        );
    }
    let next = next
        .map(|query| {
            format!(
                r#"<p><a id="next" href="/fleet/devices?{}">Next page</a></p>"#,
                escape(query)
            )
        })
        .unwrap_or_default();
    page(
        "Devices",
        &format!(
            r#"{header}
<main>
<h2>Devices</h2>
<form method="get" action="/fleet/devices">
<label for="q">Id starts with</label> <input id="q" name="q" value="{prefix}" maxlength="64">
<label for="status">Status</label> <select id="status" name="status">{options}</select>
<button type="submit">Search</button>
</form>
<table>
<thead><tr><th scope="col">Device</th><th scope="col">Status</th><th scope="col">Last seen</th><th scope="col" class="wide">Readings</th><th scope="col" class="wide">Dead letters</th></tr></thead>
<tbody id="devices-found">{rows}</tbody>
</table>
{next}
</main>"#,
            header = header(csrf, None),
            prefix = escape(search.prefix),
        ),
    )
}

/// A dead letter's replay form, for a viewer who may replay (`ack`: its CSRF token).
fn replay_form(id: i64, csrf: &str) -> String {
    format!(
        r#"<form method="post" action="/dead-letters/replay"><input type="hidden" name="id" value="{id}"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Replay</button></form>"#,
        csrf = escape(csrf)
    )
}

/// The newest dead letters; `replay`: the viewer may replay them (its CSRF token, or ""
/// without login). Not live: a reload shows what came since.
pub fn dead_letters(
    letters: &[DeadLetterSummary],
    csrf: Option<&str>,
    replay: Option<&str>,
) -> String {
    let mut rows = String::new();
    for d in letters {
        let _ = write!(
            rows,
            r#"<tr data-dead-letter="{id}"><td><a href="/dead-letters/{id}">{id}</a></td><td class="wide">{at}</td><td>{client}</td><td>{reason}</td><td class="wide">{bytes}</td><td>{form}</td></tr>"#,
            id = d.id,
            at = escape(&d.received_at),
            client = escape(&d.client_id),
            reason = escape(&d.reason),
            bytes = d.payload_bytes,
            form = replay
                .map(|csrf| replay_form(d.id, csrf))
                .unwrap_or_default(),
        );
    }
    page(
        "Dead letters",
        &format!(
            r#"{header}
<main>
<h2>Dead letters, newest first</h2>
<p>Messages Eliot refused, kept whole with the reason. A replay takes one through today's rules again: accepted, it is stored and leaves the dead letters.</p>
<table>
<thead><tr><th scope="col">Id</th><th scope="col" class="wide">Received</th><th scope="col">Client</th><th scope="col">Reason</th><th scope="col" class="wide">Bytes</th><th scope="col"></th></tr></thead>
<tbody id="dead-letters">{rows}</tbody>
</table>
</main>"#,
            header = header(csrf, None),
        ),
    )
}

/// One dead letter whole: its payload as text when it is UTF-8 (escaped), else as hex.
pub fn dead_letter(letter: &StoredDeadLetter, csrf: Option<&str>, replay: Option<&str>) -> String {
    let d = &letter.summary;
    let payload = match std::str::from_utf8(&letter.payload) {
        Ok(text) => format!(
            r#"<p>Payload, as text:</p><pre id="payload">{}</pre>"#,
            escape(text)
        ),
        Err(_) => {
            let hex: String = letter.payload.iter().map(|b| format!("{b:02x} ")).collect();
            format!(r#"<p>Payload, not UTF-8: its bytes in hex.</p><pre id="payload">{hex}</pre>"#)
        }
    };
    page(
        &format!("Dead letter {}", d.id),
        &format!(
            r#"{header}
<main>
<h2>Dead letter {id}</h2>
<dl>
<dt>Received</dt><dd>{at}</dd>
<dt>Client</dt><dd>{client}</dd>
<dt>Topic</dt><dd>{topic}</dd>
<dt>Reason</dt><dd id="reason">{reason}</dd>
<dt>Bytes</dt><dd>{bytes}</dd>
</dl>
{payload}
{form}
</main>"#,
            header = header(csrf, None),
            id = d.id,
            at = escape(&d.received_at),
            client = escape(&d.client_id),
            topic = escape(&d.topic),
            reason = escape(&d.reason),
            bytes = d.payload_bytes,
            form = replay
                .map(|csrf| replay_form(d.id, csrf))
                .unwrap_or_default(),
        ),
    )
}

/// What a replay did.
pub fn replayed(id: i64, outcome: &ReplayOutcome, csrf: Option<&str>) -> String {
    let said = match outcome {
        ReplayOutcome::Accepted { readings } => {
            format!("accepted: {readings} reading(s) stored; it left the dead letters")
        }
        ReplayOutcome::Rejected { reason } => {
            format!("rejected again, and kept: {}", escape(reason))
        }
        ReplayOutcome::Gone => "gone: replayed already, or shed".to_owned(),
    };
    page(
        "Replayed",
        &format!(
            r#"{header}
<main>
<h2>Dead letter {id}</h2>
<p id="outcome" role="status">{said}</p>
<p><a href="/dead-letters">Back to the dead letters</a></p>
</main>"#,
            header = header(csrf, None),
        ),
    )
}

/// The fleet at a glance, as it is now; the script keeps it live. `csrf`: the session's
/// token for the logout form (`None` without login).
pub fn fleet(now: &Snapshot, csrf: Option<&str>) -> String {
    let rows: String = now.devices.iter().map(device_row).collect();
    let mut noisiest = String::new();
    for d in &now.noisiest {
        let _ = write!(
            noisiest,
            r#"<tr data-noisy="{id}"><td><a href="/fleet/devices/{id}">{id}</a></td><td>{messages}</td><td class="wide">{readings}</td><td>{dead}</td></tr>"#,
            id = escape(&d.device_id),
            messages = d.messages,
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
<h2>Noisiest devices, most messages first</h2>
<table>
<thead><tr><th scope="col">Device</th><th scope="col">Messages</th><th scope="col" class="wide">Readings</th><th scope="col">Dead letters</th></tr></thead>
<tbody id="noisiest">{noisiest}</tbody>
</table>
</main>"#,
            header = header(csrf, Some("/live")),
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
                messages: 3,
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
