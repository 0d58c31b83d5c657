//! A shard's devices: a map ordered by id (keyset paging by id is a range of it), an
//! index per status (so `status=late&limit=100` reads about 100 entries whatever the
//! fleet's size), and the devices each live connection carries (so a connection's end
//! finds its devices without a scan). Every change of a device goes through `update`,
//! which keeps the indexes true.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound;

use super::handle::{DeviceCursor, DeviceQuery, DeviceSort};
use super::state::{Device, DeviceId, DeviceState};
#[cfg(test)]
use super::state::Status;

#[derive(Default)]
pub struct Book {
    devices: BTreeMap<DeviceId, Device>,
    by_status: [BTreeSet<DeviceId>; 4],
    by_connection: HashMap<u64, Vec<DeviceId>>,
}

impl Book {
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    /// The map's own key for `id` (shared with the indexes and the timers).
    pub fn key(&self, id: &str) -> Option<DeviceId> {
        self.devices.get_key_value(id).map(|(k, _)| k.clone())
    }

    pub fn insert(&mut self, id: DeviceId, device: Device) {
        self.index(&id, &device);
        if let Some(old) = self.devices.insert(id.clone(), device) {
            self.unindex(&id, &old);
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<(DeviceId, Device)> {
        let (id, device) = self.devices.remove_entry(id)?;
        self.unindex(&id, &device);
        Some((id, device))
    }

    /// Changes a device, keeping the indexes true.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut Device) -> R) -> Option<R> {
        let (key, device) = self.devices.get_key_value(id)?;
        let key = key.clone();
        let (status, connection) = (device.status(), device.connection_id());
        let device = self.devices.get_mut(id)?;
        let answer = change(device);
        let (new_status, new_connection) = (device.status(), device.connection_id());
        if new_status != status {
            self.by_status[status.index()].remove(&key);
            self.by_status[new_status.index()].insert(key.clone());
        }
        if new_connection != connection {
            if let Some(old) = connection {
                self.drop_connection(old, &key);
            }
            if let Some(new) = new_connection {
                self.by_connection.entry(new).or_default().push(key);
            }
        }
        Some(answer)
    }

    /// The devices connection `id` carries.
    pub fn carried_by(&self, connection: u64) -> Vec<DeviceId> {
        self.by_connection
            .get(&connection)
            .cloned()
            .unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DeviceId, &Device)> {
        self.devices.iter()
    }

    pub fn ids(&self) -> Vec<DeviceId> {
        self.devices.keys().cloned().collect()
    }

    /// Devices per status, in `Status::ALL` order.
    pub fn per_status(&self) -> [i64; 4] {
        self.by_status.each_ref().map(|s| s.len() as i64)
    }

    fn index(&mut self, id: &DeviceId, device: &Device) {
        self.by_status[device.status().index()].insert(id.clone());
        if let Some(connection) = device.connection_id() {
            self.by_connection
                .entry(connection)
                .or_default()
                .push(id.clone());
        }
    }

    fn unindex(&mut self, id: &DeviceId, device: &Device) {
        self.by_status[device.status().index()].remove(id);
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

    /// Up to `query.limit` devices matching it, after its cursor, in its order.
    pub fn list(&self, query: &DeviceQuery) -> Vec<DeviceState> {
        let candidates: Box<dyn Iterator<Item = &DeviceId>> = match query.sort {
            DeviceSort::Id => self.ids_from(query),
            DeviceSort::LastSeen => match query.status {
                Some(status) => Box::new(self.by_status[status.index()].iter()),
                None => Box::new(self.devices.keys()),
            },
        };
        let prefix = query.id_prefix.as_deref().unwrap_or("");
        let matching = candidates
            .take_while(|id| query.sort != DeviceSort::Id || id.starts_with(prefix))
            .filter_map(|id| Some((id, self.devices.get(id)?)))
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
                // The `limit` first by (last seen, newest first; id): a bounded max-heap.
                let mut first = BinaryHeap::with_capacity(query.limit + 1);
                for (id, device) in matching {
                    let key = (Reverse(device.last_seen.unwrap_or(i64::MIN)), &**id);
                    if after.is_some_and(|after| key <= after) {
                        continue;
                    }
                    first.push((key, id));
                    if first.len() > query.limit {
                        first.pop();
                    }
                }
                let mut first = first.into_vec();
                first.sort();
                first
                    .into_iter()
                    .filter_map(|(_, id)| Some(self.devices.get(id)?.view(id)))
                    .collect()
            }
        }
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
            Some(status) => Box::new(
                self.by_status[status.index()]
                    .range::<str, _>(range)
                    .map(|id| id),
            ),
            None => Box::new(self.devices.range::<str, _>(range).map(|(id, _)| id)),
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
        .filter(|s| book.by_status[s.index()].contains(id))
        .collect()
}
