//! The dead letters' byte quota: dead letters are kept whole, so a client sending
//! nothing but rejected messages could fill the disk with them. Past `store.
//! dead_letter_quota` bytes, the oldest are shed, in the same transaction as the new ones:
//! the newest evidence is the most useful, and the readings never give way.

use rusqlite::{params, OptionalExtension, Transaction};

use super::database::{naming, Store, StoreError};

/// What one dead letter weighs against the quota: what it stores of the device's.
/// (`length` counts a text's characters: cast to a blob, it counts bytes.)
pub const ROW_BYTES: &str = "length(payload) + length(CAST(topic AS BLOB)) \
    + length(CAST(client_id AS BLOB)) + length(CAST(reason AS BLOB))";

/// What a shedding removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shed {
    pub rows: usize,
    pub bytes: u64,
}

/// Sheds the oldest dead letters until `total` fits in `quota`; `total` is updated.
pub fn shed_over_quota(
    tx: &Transaction<'_>,
    quota: u64,
    total: &mut u64,
) -> rusqlite::Result<Shed> {
    let mut shed = Shed::default();
    if *total <= quota {
        return Ok(shed);
    }
    let mut last_id = None;
    {
        let mut oldest = tx.prepare_cached(&format!(
            "SELECT id, {ROW_BYTES} FROM dead_letters ORDER BY id"
        ))?;
        let mut rows = oldest.query([])?;
        while *total - shed.bytes > quota {
            let Some(row) = rows.next()? else {
                break;
            };
            let (id, bytes): (i64, i64) = (row.get(0)?, row.get(1)?);
            last_id = Some(id);
            shed.rows += 1;
            shed.bytes += u64::try_from(bytes).unwrap_or(0);
        }
    }
    if let Some(last_id) = last_id {
        tx.execute("DELETE FROM dead_letters WHERE id <= ?1", params![last_id])?;
    }
    *total -= shed.bytes.min(*total);
    Ok(shed)
}

/// What dead letter `id` weighs against the quota, if it is still kept.
pub fn replayed_weight(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Option<u64>> {
    let mut weigh = tx.prepare_cached(&format!(
        "SELECT {ROW_BYTES} FROM dead_letters WHERE id = ?1"
    ))?;
    weigh
        .query_row(params![id], |row| row.get::<_, i64>(0))
        .optional()
        .map(|bytes| bytes.map(|b| u64::try_from(b).unwrap_or(0)))
}

/// Deletes dead letter `id`, whose replay is stored in the same transaction.
pub fn forget_replayed(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

impl Store {
    /// The disk is full: sheds the older half of the dead letters (readings are what Eliot
    /// is for; dead letters are the first to go). Answers what went.
    pub fn make_room(&mut self) -> Result<Shed, StoreError> {
        let sqlite = naming(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        let weigh = format!("SELECT count(*), coalesce(sum({ROW_BYTES}), 0) FROM dead_letters");
        let (rows_before, bytes_before): (i64, i64) = tx
            .query_row(&weigh, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(&sqlite)?;
        tx.execute(
            "DELETE FROM dead_letters WHERE id IN \
             (SELECT id FROM dead_letters ORDER BY id LIMIT (SELECT (count(*) + 1) / 2 FROM dead_letters))",
            [],
        )
        .map_err(&sqlite)?;
        let (rows_after, bytes_after): (i64, i64) = tx
            .query_row(&weigh, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(&sqlite)?;
        tx.commit().map_err(&sqlite)?;
        self.dead_letter_bytes = u64::try_from(bytes_after).unwrap_or(0);
        Ok(Shed {
            rows: usize::try_from(rows_before - rows_after).unwrap_or(0),
            bytes: u64::try_from(bytes_before - bytes_after).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::database::Amendment;
    use super::super::settings::StoreSettings;
    use super::*;
    use crate::message::{DeadLetter, Outcome};
    use std::path::Path;

    fn settings(dir: &Path) -> StoreSettings {
        StoreSettings::for_tests(dir)
    }

    fn dead_letter(n: usize) -> Outcome {
        Outcome::Rejected(DeadLetter {
            topic: "devices/d1/telemetry".into(),
            payload: bytes::Bytes::from(format!("{n:0>60}")),
            client_id: "c1".into(),
            device_id: Some("d1".into()),
            reason: "payload is not valid JSON: é".into(),
            received_at: "2025-01-01T00:00:00.000000Z".into(),
            redelivered: false,
            replay_of: None,
        })
    }

    #[test]
    fn the_oldest_dead_letters_are_shed_past_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let quota = StoreSettings {
            dead_letter_quota: 400,
            ..settings(dir.path())
        };
        let mut store = Store::open(&quota).unwrap();
        // Each weighs 60 + 20 + 2 + 29 = 111 bytes: three fit in 400, not four.
        let first: Vec<Outcome> = (0..3).map(dead_letter).collect();
        assert_eq!(store.write(&first).unwrap().shed.rows, 0);
        let more: Vec<Outcome> = (3..5).map(dead_letter).collect();
        let stats = store.write(&more).unwrap();
        assert_eq!((stats.shed.rows, stats.shed.bytes), (2, 222));
        let kept: Vec<String> = {
            let mut stmt = store
                .conn
                .prepare("SELECT payload FROM dead_letters ORDER BY id")
                .unwrap();
            stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
                .unwrap()
                .map(|p| String::from_utf8(p.unwrap()).unwrap())
                .collect()
        };
        assert_eq!(kept, [dead(2), dead(3), dead(4)]);
        // What is kept is weighed again on the next opening: one more sheds one.
        let mut reopened = Store::open(&quota).unwrap();
        assert_eq!(reopened.write([&dead_letter(5)]).unwrap().shed.rows, 1);
    }

    #[test]
    fn a_redelivered_dead_letter_already_kept_is_not_kept_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&settings(dir.path())).unwrap();
        store.write([&dead_letter(1)]).unwrap();
        let resend = |n| match dead_letter(n) {
            Outcome::Rejected(mut d) => {
                d.redelivered = true;
                Outcome::Rejected(d)
            }
            other => other,
        };
        let stats = store
            .write([&resend(1), &resend(2), &dead_letter(1)])
            .unwrap();
        // The DUP of 1 is known; the DUP of 2 is not (its original never arrived); a plain
        // repeat of 1 (not a DUP) is a new message.
        assert_eq!(stats.amended, [(0, Amendment::Redelivered)]);
        assert_eq!(stats.dead_letters, 2);
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM dead_letters", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }

    fn dead(n: usize) -> String {
        format!("{n:0>60}")
    }
}
