//! A shard's devices: a hash map (the look-up of every message: one hash, one probe; a
//! B-tree's compared the id with a dozen others, each behind a pointer of its own), the
//! ids in order beside it (keyset paging by id is a range of them), an index per status
//! but `offline` (so `status=late&limit=100` reads about 100 entries whatever the fleet's
//! size), and the devices each live connection carries (so a connection's end finds its
//! devices without a scan). Every change of a device goes through `update`, which keeps
//! the indexes and the counts per status true.
//!
//! Memory: most known devices are offline (provisioned, never heard), so `offline` has no
//! index (a listing of offline devices reads the ordered ids, where they are the
//! majority); the devices are boxed (the map's slots, up to half of them empty after it
//! grows, are a pointer wide); and the ordered ids are rebuilt into full B-tree nodes once
//! a shard's devices are loaded (`compact`).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound;

use super::handle::{DeviceCursor, DeviceQuery, DeviceSort};
use super::state::{Device, DeviceId, DeviceState, Status};

#[derive(Default)]
pub struct Book {
    devices: HashMap<DeviceId, Box<Device>>,
    /// The same ids, in order.
    order: BTreeSet<DeviceId>,
    indexes: Indexes,
}

/// What `Book` keeps beside its map, true to it.
#[derive(Default)]
struct Indexes {
    /// Per status, the ids with it; `offline`'s stays empty (see above).
    by_status: [BTreeSet<DeviceId>; 4],
    /// Devices per status, in `Status::ALL` order.
    counts: [usize; 4],
    by_connection: HashMap<u64, Vec<DeviceId>>,
}

/// Whether a status has an index of its own.
fn indexed(status: Status) -> bool {
    status != Status::Offline
}

impl Book {
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id).map(|device| &**device)
    }

    /// The map's own key for `id` (shared with the indexes and the timers).
    pub fn key(&self, id: &str) -> Option<DeviceId> {
        self.devices.get_key_value(id).map(|(k, _)| k.clone())
    }

    /// Rebuilds the ordered ids into full nodes, once the devices are loaded: inserted in
    /// order, they leave its nodes about half full. (`append` into a set that has an id
    /// merges the two into new, full nodes, freeing the old ones as it goes: no copy of
    /// the whole.)
    pub fn compact(&mut self) {
        let mut rest = std::mem::take(&mut self.order);
        if let Some(id) = rest.pop_first() {
            self.order.insert(id);
            self.order.append(&mut rest);
        }
        self.devices.shrink_to_fit();
    }

    pub fn insert(&mut self, id: DeviceId, device: Device) {
        self.indexes.add(&id, &device);
        match self.devices.insert(id.clone(), Box::new(device)) {
            Some(old) => self.indexes.remove(&id, &old),
            None => {
                self.order.insert(id);
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<(DeviceId, Device)> {
        let (id, device) = self.devices.remove_entry(id)?;
        self.order.remove(&id);
        self.indexes.remove(&id, &device);
        Some((id, *device))
    }

    /// Changes a device, keeping the indexes true. One lookup, unless the change moves
    /// the device between indexes.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Device) -> R) -> Option<R> {
        let device = self.devices.get_mut(id)?;
        let before = (device.status(), device.connection_id());
        let answer = change(device);
        let after = (device.status(), device.connection_id());
        if after != before {
            let key = self.key(id)?;
            self.indexes.moved(&key, before, after);
        }
        Some(answer)
    }

    /// The devices connection `id` carries.
    pub fn carried_by(&self, connection: u64) -> Vec<DeviceId> {
        self.indexes
            .by_connection
            .get(&connection)
            .cloned()
            .unwrap_or_default()
    }

    /// Every device, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&DeviceId, &Device)> {
        self.devices.iter().map(|(id, device)| (id, &**device))
    }

    pub fn ids(&self) -> Vec<DeviceId> {
        self.order.iter().cloned().collect()
    }

    /// Devices per status, in `Status::ALL` order.
    pub fn per_status(&self) -> [i64; 4] {
        self.indexes.counts.map(|n| n as i64)
    }

    /// Up to `query.limit` devices matching it, after its cursor, in its order.
    pub fn list(&self, query: &DeviceQuery) -> Vec<DeviceState> {
        let candidates: Box<dyn Iterator<Item = &DeviceId>> = match query.sort {
            DeviceSort::Id => self.ids_from(query),
            DeviceSort::LastSeen => match query.status {
                Some(status) if indexed(status) => {
                    Box::new(self.indexes.by_status[status.index()].iter())
                }
                _ => Box::new(self.devices.keys()),
            },
        };
        let prefix = query.id_prefix.as_deref().unwrap_or("");
        let matching = candidates
            .take_while(|id| query.sort != DeviceSort::Id || id.starts_with(prefix))
            .filter_map(|id| Some((id, self.get(id)?)))
            .filter(|(id, device)| matches(query, id, device));
        match query.sort {
            DeviceSort::Id => matching
                .take(query.limit)
                .map(|(id, device)| device.view(id))
                .collect(),
            DeviceSort::LastSeen => {
                let after = match &query.after {
                    Some(DeviceCursor::LastSeen { last_seen, id }) => {
                        Some((Reverse(*last_seen), id.as_str()))
                    }
                    _ => None,
                };
                // By (last seen, newest first; id).
                let keyed = matching.filter_map(|(id, device)| {
                    let key = (Reverse(device.last_seen.unwrap_or(i64::MIN)), &**id);
                    after.is_none_or(|after| key > after).then_some((key, id))
                });
                self.first(keyed, query.limit)
            }
        }
    }

    /// The `limit` devices that sent the most messages, most first (ties by id).
    pub fn noisiest(&self, limit: usize) -> Vec<DeviceState> {
        let keyed = (self.devices.iter())
            .map(|(id, device)| ((Reverse(device.counts.messages), &**id), id));
        self.first(keyed, limit)
    }

    /// The views of the `limit` devices of least key, in key order: a bounded max-heap
    /// (keys end with the id, so no two are equal).
    fn first<'a, K: Ord>(
        &'a self,
        keyed: impl Iterator<Item = (K, &'a DeviceId)>,
        limit: usize,
    ) -> Vec<DeviceState> {
        let mut first = BinaryHeap::with_capacity(limit + 1);
        for entry in keyed {
            first.push(entry);
            if first.len() > limit {
                first.pop();
            }
        }
        let mut first = first.into_vec();
        first.sort();
        first
            .into_iter()
            .filter_map(|(_, id)| Some(self.get(id)?.view(id)))
            .collect()
    }

    /// Ids in order from the query's cursor (exclusive) or its prefix, whichever is later.
    fn ids_from<'a>(&'a self, query: &DeviceQuery) -> Box<dyn Iterator<Item = &'a DeviceId> + 'a> {
        let after = match &query.after {
            Some(DeviceCursor::Id(id)) => Some(id.as_str()),
            _ => None,
        };
        let prefix = query.id_prefix.as_deref().filter(|p| !p.is_empty());
        let start: Bound<&str> = match (after, prefix) {
            (Some(after), Some(prefix)) if prefix > after => Bound::Included(prefix),
            (Some(after), _) => Bound::Excluded(after),
            (None, Some(prefix)) => Bound::Included(prefix),
            (None, None) => Bound::Unbounded,
        };
        let range = (start, Bound::Unbounded);
        match query.status {
            Some(status) if indexed(status) => {
                Box::new(self.indexes.by_status[status.index()].range::<str, _>(range))
            }
            _ => Box::new(self.order.range::<str, _>(range)),
        }
    }
}

/// What the indexes know of a device: its status and live connection.
type Place = (Status, Option<u64>);

impl Indexes {
    /// The device `key` moved from `before` to `after`.
    fn moved(&mut self, key: &DeviceId, before: Place, after: Place) {
        let ((status, connection), (new_status, new_connection)) = (before, after);
        if new_status != status {
            self.counts[status.index()] -= 1;
            self.counts[new_status.index()] += 1;
            if indexed(status) {
                self.by_status[status.index()].remove(key);
            }
            if indexed(new_status) {
                self.by_status[new_status.index()].insert(key.clone());
            }
        }
        if new_connection != connection {
            if let Some(old) = connection {
                self.drop_connection(old, key);
            }
            if let Some(new) = new_connection {
                self.by_connection.entry(new).or_default().push(key.clone());
            }
        }
    }

    fn add(&mut self, id: &DeviceId, device: &Device) {
        let status = device.status();
        self.counts[status.index()] += 1;
        if indexed(status) {
            self.by_status[status.index()].insert(id.clone());
        }
        if let Some(connection) = device.connection_id() {
            self.by_connection
                .entry(connection)
                .or_default()
                .push(id.clone());
        }
    }

    fn remove(&mut self, id: &DeviceId, device: &Device) {
        let status = device.status();
        self.counts[status.index()] -= 1;
        self.by_status[status.index()].remove(id);
        if let Some(connection) = device.connection_id() {
            self.drop_connection(connection, id);
        }
    }

    fn drop_connection(&mut self, connection: u64, id: &DeviceId) {
        if let Some(carried) = self.by_connection.get_mut(&connection) {
            carried.retain(|d| d != id);
            if carried.is_empty() {
                self.by_connection.remove(&connection);
            }
        }
    }
}

fn matches(query: &DeviceQuery, id: &str, device: &Device) -> bool {
    query.id_prefix.as_deref().is_none_or(|p| id.starts_with(p))
        && query.status.is_none_or(|s| device.status() == s)
        && query
            .quarantined
            .is_none_or(|q| device.quarantine.is_some() == q)
        && query
            .sensor_type
            .as_deref()
            .is_none_or(|t| device.last_of(t).is_some())
}

/// The statuses whose index a device is in (for tests).
#[cfg(test)]
pub fn statuses(book: &Book, id: &str) -> Vec<Status> {
    Status::ALL
        .into_iter()
        .filter(|s| match indexed(*s) {
            true => book.indexes.by_status[s.index()].contains(id),
            false => book.get(id).is_some_and(|d| d.status() == *s),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::state::Presence;
    use std::sync::Arc;

    fn device(presence: Presence, last_seen: Option<i64>) -> Device {
        let mut device = Device::unheard(0, "known");
        device.presence = presence;
        device.last_seen = last_seen;
        device
    }

    /// d00..d29: every third late, the others online; last seen in id order, d05 never.
    fn book() -> Book {
        let mut book = Book::default();
        for i in 0..30 {
            let presence = if i % 3 == 0 {
                Presence::Late
            } else {
                Presence::Online
            };
            let seen = (i != 5).then_some(i64::from(i) * 1_000);
            book.insert(Arc::from(format!("d{i:02}")), device(presence, seen));
        }
        book
    }

    fn ids(page: &[DeviceState]) -> Vec<&str> {
        page.iter().map(|d| d.device_id.as_str()).collect()
    }

    fn query(limit: usize) -> DeviceQuery {
        DeviceQuery {
            limit,
            ..DeviceQuery::default()
        }
    }

    #[test]
    fn pages_by_id_follow_the_cursor_without_gap_or_repeat() {
        let book = book();
        let mut seen = Vec::new();
        let mut q = query(7);
        loop {
            let page = book.list(&q);
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            match page.last() {
                Some(last) if page.len() == 7 => {
                    q.after = Some(DeviceCursor::Id(last.device_id.clone()))
                }
                _ => break,
            }
        }
        let all: Vec<String> = (0..30).map(|i| format!("d{i:02}")).collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn a_status_filter_reads_its_index() {
        let book = book();
        let late = DeviceQuery {
            status: Some(Status::Late),
            ..query(3)
        };
        assert_eq!(ids(&book.list(&late)), ["d00", "d03", "d06"]);
        let after = DeviceQuery {
            after: Some(DeviceCursor::Id("d06".into())),
            ..late
        };
        assert_eq!(ids(&book.list(&after)), ["d09", "d12", "d15"]);
        assert_eq!(statuses(&book, "d03"), [Status::Late]);
    }

    #[test]
    fn the_indexes_follow_a_change() {
        let mut book = book();
        book.update("d03", |d| d.presence = Presence::Offline);
        assert_eq!(statuses(&book, "d03"), [Status::Offline]);
        assert_eq!(book.per_status(), [20, 9, 1, 0]);
        book.remove("d03");
        assert_eq!(statuses(&book, "d03"), []);
        assert_eq!(book.per_status(), [20, 9, 0, 0]);
    }

    #[test]
    fn a_prefix_starts_and_ends_the_range() {
        let book = book();
        let q = DeviceQuery {
            id_prefix: Some("d1".into()),
            ..query(100)
        };
        assert_eq!(ids(&book.list(&q)).len(), 10);
        let after = DeviceQuery {
            after: Some(DeviceCursor::Id("d0".into())),
            ..q
        };
        assert_eq!(ids(&book.list(&after))[0], "d10");
    }

    #[test]
    fn by_last_seen_newest_first_and_never_seen_last() {
        let book = book();
        let q = DeviceQuery {
            sort: DeviceSort::LastSeen,
            ..query(3)
        };
        assert_eq!(ids(&book.list(&q)), ["d29", "d28", "d27"]);
        let tail = DeviceQuery {
            after: Some(DeviceCursor::LastSeen {
                last_seen: 1_000,
                id: "d01".into(),
            }),
            ..q
        };
        assert_eq!(ids(&book.list(&tail)), ["d00", "d05"]);
    }

    #[test]
    fn the_noisiest_by_messages_most_first_ties_by_id() {
        let mut book = book();
        for (id, messages) in [("d07", 9), ("d02", 40), ("d11", 9), ("d20", 3)] {
            book.update(id, |d| d.counts.messages = messages);
        }
        assert_eq!(ids(&book.noisiest(3)), ["d02", "d07", "d11"]);
        assert_eq!(book.noisiest(0).len(), 0);
        assert_eq!(
            book.noisiest(100).len(),
            30,
            "every device, when asked for more"
        );
    }
}
