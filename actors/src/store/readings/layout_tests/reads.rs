//! The read API over memory and chunks at once, mid-merge: each reading returned once,
//! in order, and the same once merged.

use super::*;
use crate::store::Reader;

#[test]
fn reads_combine_memory_and_chunks_and_return_each_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 250)).unwrap();
    store.upkeep(usize::MAX).unwrap(); // mid-merge: the sealed generation is in memory and partly chunked
    let reader = Reader::new(&settings(dir.path()), store.memtable());
    let d0: Vec<i64> = (0..250).filter(|n| n % 3 == 0).collect();

    let last = reader.last("d0", 1_000).unwrap();
    assert_eq!(last.len(), d0.len());
    assert_eq!(last[0].timestamp, format_micros(BASE + 249 * 1_000_000));
    assert!(last.windows(2).all(|w| w[0].timestamp > w[1].timestamp));
    assert_eq!(reader.last("d0", 5).unwrap().len(), 5);

    let latest = reader.latest("d0").unwrap();
    let sensors: Vec<(&str, &str)> = latest
        .iter()
        .map(|r| (r.sensor_type.as_str(), r.data.as_str()))
        .collect();
    assert_eq!(
        sensors,
        [("battery", r#"{"n":249}"#), ("gps", r#"{"n":246}"#)]
    );

    let (from, to) = (BASE + 30 * 1_000_000, BASE + 60 * 1_000_000);
    let range = reader.range("d0", (from, to), 10_000).unwrap();
    let expected: Vec<String> = (30..60)
        .filter(|n| n % 3 == 0)
        .map(|n| format_micros(BASE + n * 1_000_000))
        .collect();
    let got: Vec<String> = range.iter().map(|r| r.timestamp.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(reader.range("d0", (from, to), 3).unwrap().len(), 3);
    assert!(reader.last("nobody", 10).unwrap().is_empty());

    upkeep_until_merged(&mut store);
    assert_eq!(
        reader.last("d0", 1_000).unwrap(),
        last,
        "the same once merged"
    );
}

/// Keyset pages over memory and chunks while the store writes and merges between pages:
/// every reading stored before the first page is seen once, in order, both ways, and a
/// sensor type and a time window narrow the pages.
#[test]
fn keyset_pages_see_each_reading_once_while_writes_and_merges_go_on() {
    use crate::store::{PageRequest, ReadingKey};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 250)).unwrap();
    store.upkeep(usize::MAX).unwrap();
    let reader = Reader::new(&settings(dir.path()), store.memtable());
    let before: Vec<i64> = (0..250).filter(|n| n % 3 == 0).collect();
    for descending in [false, true] {
        let mut request = PageRequest {
            sensor_type: None,
            within: (i64::MIN + 1, i64::MAX),
            descending,
            after: None,
            limit: 7,
        };
        let (mut seen, mut round) = (Vec::<String>::new(), 0);
        loop {
            let page = reader.page("d0", &request).unwrap();
            assert!(page.readings.len() <= 7);
            seen.extend(page.readings.iter().map(|r| r.timestamp.clone()));
            // Between pages: newer readings arrive (after every position, so a walk
            // oldest first meets them), and the merge moves rows from memory to chunks.
            round += 1;
            store.write(&fleet(1000 + round * 3, 3)).unwrap();
            store.upkeep(usize::MAX).unwrap();
            match page.next {
                Some(next) => request.after = Some(next),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "no repeat");
        let mut ordered = seen.clone();
        ordered.sort();
        if descending {
            ordered.reverse();
        }
        assert_eq!(seen, ordered, "in the page order");
        for n in &before {
            let ts = format_micros(BASE + n * 1_000_000);
            assert!(
                seen.contains(&ts),
                "no gap: {ts} missing (descending {descending})"
            );
        }
    }
    let gps_window = PageRequest {
        sensor_type: Some("gps".into()),
        within: (BASE + 30 * 1_000_000, BASE + 60 * 1_000_000),
        descending: false,
        after: Some(ReadingKey {
            ts: BASE + 30 * 1_000_000,
            sensor_type: "gps".into(),
        }),
        limit: 100,
    };
    let page = reader.page("d0", &gps_window).unwrap();
    let got: Vec<String> = page.readings.iter().map(|r| r.timestamp.clone()).collect();
    let expected: Vec<String> = (31..60)
        .filter(|n| n % 3 == 0 && n % 2 == 0)
        .map(|n| format_micros(BASE + n * 1_000_000))
        .collect();
    assert_eq!((got, page.next), (expected, None));
}
