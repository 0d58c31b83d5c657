//! NAB's application profiles (`config/profiles.json`): what a found window earns, what a
//! missed one and a false positive cost.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{read_json, Error, Result};

/// The profiles NAB publishes, in the order its tables show them.
pub const PROFILE_ORDER: [&str; 3] = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    /// Earned by the earliest possible detection of a window (later ones earn less).
    pub tp_weight: f64,
    /// Cost of a false positive far from any window (nearer ones cost less).
    pub fp_weight: f64,
    /// Cost of a window with no detection.
    pub fn_weight: f64,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrix,
}

/// NAB's cost matrix; its `tnWeight` is never used by the scorer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostMatrix {
    tp_weight: f64,
    fp_weight: f64,
    fn_weight: f64,
}

/// The profiles of NAB at `root`: the three published ones first, then any other.
pub fn read_profiles(root: &Path) -> Result<Vec<Profile>> {
    let path = root.join("config").join("profiles.json");
    let mut entries: BTreeMap<String, Entry> = read_json(&path)?;
    let mut profiles = Vec::with_capacity(entries.len());
    for name in PROFILE_ORDER {
        let entry = entries
            .remove(name)
            .ok_or_else(|| Error::file(&path, format!("no profile `{name}`")))?;
        profiles.push(profile(name.to_owned(), entry));
    }
    profiles.extend(
        entries
            .into_iter()
            .map(|(name, entry)| profile(name, entry)),
    );
    Ok(profiles)
}

fn profile(name: String, Entry { cost_matrix: m }: Entry) -> Profile {
    Profile {
        name,
        tp_weight: m.tp_weight,
        fp_weight: m.fp_weight,
        fn_weight: m.fn_weight,
    }
}

#[cfg(test)]
pub fn standard() -> Profile {
    Profile {
        name: "standard".into(),
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_profiles_in_table_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        let matrix = |fp: f64, fn_: f64| {
            format!(
                r#"{{"CostMatrix": {{"tpWeight": 1.0, "fnWeight": {fn_}, "fpWeight": {fp}, "tnWeight": 1.0}}}}"#
            )
        };
        let json = format!(
            r#"{{"reward_low_FN_rate": {}, "standard": {}, "reward_low_FP_rate": {}}}"#,
            matrix(0.11, 2.0),
            matrix(0.11, 1.0),
            matrix(0.22, 1.0)
        );
        std::fs::write(dir.path().join("config/profiles.json"), json).unwrap();
        let profiles = read_profiles(dir.path()).unwrap();
        assert_eq!(profiles[0], standard());
        assert_eq!(
            (profiles[1].name.as_str(), profiles[1].fp_weight),
            ("reward_low_FP_rate", 0.22)
        );
        assert_eq!(
            (profiles[2].name.as_str(), profiles[2].fn_weight),
            ("reward_low_FN_rate", 2.0)
        );

        std::fs::write(
            dir.path().join("config/profiles.json"),
            "{\n  \"standard\": [\n",
        )
        .unwrap();
        let error = read_profiles(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("profiles.json") && error.contains("line"),
            "{error}"
        );
    }
}
