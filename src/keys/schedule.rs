//! The rotation schedule: which key transitions are due, as a pure function of the keys, the
//! policy and the clock (so it is tested with any clock). The rotator executes what it returns.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::{KeyState, SigningAlg};
use crate::db::models::SigningKeyRow;

/// The rotation settings, validated by `config` when the settings are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Automatic rotation period; `None`: only on demand.
    pub rotation_interval: Option<Duration>,
    /// How long a key is published before it signs (≥ JWKS max-age + refresh interval).
    pub publish_lead: Duration,
    /// How long a retired key stays published (≥ the longest token lifetime).
    pub retention: Duration,
}

/// What the schedule needs to know of a key.
#[derive(Clone, Debug)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// State.
    pub state: KeyState,
    /// Created.
    pub created_at: NaiveDateTime,
    /// Became the signer.
    pub activated_at: Option<NaiveDateTime>,
    /// A pending key's due activation.
    pub activates_at: Option<NaiveDateTime>,
    /// A retired key's due removal.
    pub remove_after: Option<NaiveDateTime>,
}

impl KeyView {
    /// The view of a stored row; `None` for a row with an unknown algorithm or state.
    pub fn of(row: &SigningKeyRow) -> Option<Self> {
        Some(Self {
            kid: row.kid.clone(),
            alg: SigningAlg::parse(&row.alg)?,
            state: KeyState::parse(&row.state)?,
            created_at: row.created_at,
            activated_at: row.activated_at,
            activates_at: row.activates_at,
            remove_after: row.remove_after,
        })
    }
}

/// A due transition. Each is carried out as one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Generate the next key of `alg` and publish it as pending, to activate at `activates_at`.
    Prepare {
        /// Algorithm.
        alg: SigningAlg,
        /// When it will sign.
        activates_at: NaiveDateTime,
    },
    /// Make the pending `kid` the signer of `alg`; the current signer retires.
    Activate {
        /// Algorithm.
        alg: SigningAlg,
        /// The pending key.
        kid: String,
    },
    /// Take the retired `kid` out of the JWKS and erase its private half.
    Remove {
        /// The retired key.
        kid: String,
    },
}

/// The next scheduled change of one key, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NextTransition {
    /// `activate` (pending), `retire` (active, replaced by a pending key or by the schedule's
    /// next key) or `remove` (retired).
    pub action: &'static str,
    /// When (UTC); for `retire` under the schedule, when the rotation is due.
    pub at: chrono::DateTime<chrono::Utc>,
}

fn duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// When the active `key` is due to be replaced under the schedule.
fn rotation_due(key: &KeyView, policy: &KeyPolicy) -> Option<NaiveDateTime> {
    let interval = policy.rotation_interval?;
    Some(key.activated_at.unwrap_or(key.created_at) + duration(interval))
}

/// Every transition due at `now`, in the order to carry them out: activations, removals, then
/// the preparation of keys for the next rotations.
pub fn due(keys: &[KeyView], policy: &KeyPolicy, now: NaiveDateTime) -> Vec<Transition> {
    let mut transitions = Vec::new();
    for alg in SigningAlg::ALL {
        let pending = keys
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Pending)
            .min_by_key(|k| (k.activates_at, k.kid.clone()));
        if let Some(key) = pending
            && key.activates_at.is_none_or(|at| at <= now)
        {
            transitions.push(Transition::Activate {
                alg,
                kid: key.kid.clone(),
            });
        }
    }
    for key in keys {
        if key.state == KeyState::Retired && key.remove_after.is_some_and(|at| at <= now) {
            transitions.push(Transition::Remove {
                kid: key.kid.clone(),
            });
        }
    }
    for alg in SigningAlg::ALL {
        let has_pending = keys
            .iter()
            .any(|k| k.alg == alg && k.state == KeyState::Pending);
        let active = keys
            .iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active);
        if has_pending {
            continue;
        }
        if let Some(due_at) = active.and_then(|key| rotation_due(key, policy))
            && due_at - duration(policy.publish_lead) <= now
        {
            // Published a full lead ahead, so the rotation at the due time is instant; a key
            // prepared late (the server was down) still gets its full lead.
            transitions.push(Transition::Prepare {
                alg,
                activates_at: due_at.max(now + duration(policy.publish_lead)),
            });
        }
    }
    transitions
}

/// The next scheduled change of `key`, given every key (a pending key retires the active one).
pub fn next_transition(
    key: &KeyView,
    keys: &[KeyView],
    policy: &KeyPolicy,
) -> Option<NextTransition> {
    let (action, at) = match key.state {
        KeyState::Pending => ("activate", key.activates_at?),
        KeyState::Retired => ("remove", key.remove_after?),
        KeyState::Active => {
            let successor = keys
                .iter()
                .filter(|k| k.alg == key.alg && k.state == KeyState::Pending)
                .filter_map(|k| k.activates_at)
                .min();
            ("retire", successor.or_else(|| rotation_due(key, policy))?)
        }
        KeyState::Removed | KeyState::Revoked => return None,
    };
    Some(NextTransition {
        action,
        at: at.and_utc(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default()
    }

    fn policy() -> KeyPolicy {
        KeyPolicy {
            rotation_interval: Some(Duration::from_secs(1000)),
            publish_lead: Duration::from_secs(100),
            retention: Duration::from_secs(50),
        }
    }

    fn key(kid: &str, alg: SigningAlg, state: KeyState) -> KeyView {
        KeyView {
            kid: kid.into(),
            alg,
            state,
            created_at: t(0),
            activated_at: (state == KeyState::Active).then(|| t(0)),
            activates_at: None,
            remove_after: None,
        }
    }

    fn actives() -> Vec<KeyView> {
        vec![
            key("e1", SigningAlg::Es256, KeyState::Active),
            key("r1", SigningAlg::Rs256, KeyState::Active),
        ]
    }

    #[test]
    fn nothing_is_due_early_in_a_keys_life() {
        assert_eq!(due(&actives(), &policy(), t(899)), vec![]);
    }

    #[test]
    fn the_next_key_is_prepared_one_publish_lead_before_the_rotation_is_due() {
        assert_eq!(
            due(&actives(), &policy(), t(900)),
            vec![
                Transition::Prepare {
                    alg: SigningAlg::Es256,
                    activates_at: t(1000)
                },
                Transition::Prepare {
                    alg: SigningAlg::Rs256,
                    activates_at: t(1000)
                },
            ]
        );
    }

    #[test]
    fn a_late_preparation_still_gets_the_full_publish_lead() {
        let transitions = due(&actives(), &policy(), t(5000));
        assert_eq!(
            transitions[0],
            Transition::Prepare {
                alg: SigningAlg::Es256,
                activates_at: t(5100)
            }
        );
    }

    #[test]
    fn a_pending_key_activates_only_after_the_lead() {
        let mut keys = actives();
        let mut pending = key("e2", SigningAlg::Es256, KeyState::Pending);
        pending.activates_at = Some(t(1000));
        keys.push(pending);
        assert_eq!(
            due(&keys, &policy(), t(999)),
            vec![Transition::Prepare {
                alg: SigningAlg::Rs256,
                activates_at: t(1099)
            }]
        );
        assert_eq!(
            due(&keys, &policy(), t(1000))[0],
            Transition::Activate {
                alg: SigningAlg::Es256,
                kid: "e2".into()
            }
        );
    }

    #[test]
    fn a_retired_key_is_removed_after_its_retention() {
        let mut keys = actives();
        let mut retired = key("e0", SigningAlg::Es256, KeyState::Retired);
        retired.remove_after = Some(t(50));
        keys.push(retired);
        assert!(due(&keys, &policy(), t(49)).is_empty());
        assert_eq!(
            due(&keys, &policy(), t(50)),
            vec![Transition::Remove { kid: "e0".into() }]
        );
    }

    #[test]
    fn manual_policy_never_prepares() {
        let manual = KeyPolicy {
            rotation_interval: None,
            ..policy()
        };
        assert!(due(&actives(), &manual, t(1_000_000)).is_empty());
    }

    #[test]
    fn listings_name_the_next_transition() {
        let mut keys = actives();
        let mut pending = key("e2", SigningAlg::Es256, KeyState::Pending);
        pending.activates_at = Some(t(700));
        keys.push(pending);
        let es_active = next_transition(&keys[0], &keys, &policy());
        assert_eq!(
            es_active,
            Some(NextTransition {
                action: "retire",
                at: t(700).and_utc()
            })
        );
        let rs_active = next_transition(&keys[1], &keys, &policy());
        assert_eq!(rs_active.map(|n| n.at), Some(t(1000).and_utc()));
        assert_eq!(
            next_transition(&keys[2], &keys, &policy()).map(|n| n.action),
            Some("activate")
        );
    }
}

/// A key as listed by the CLI and admin API (no key material).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// State.
    pub state: KeyState,
    /// Created (UTC).
    pub created_at: DateTime<Utc>,
    /// Activated (UTC).
    pub activated_at: Option<DateTime<Utc>>,
    /// Retired (UTC).
    pub retired_at: Option<DateTime<Utc>>,
    /// Revoked (UTC).
    pub revoked_at: Option<DateTime<Utc>>,
    /// A pending key's due activation (UTC).
    pub activates_at: Option<DateTime<Utc>>,
    /// When a retired key leaves the JWKS (UTC).
    pub remove_after: Option<DateTime<Utc>>,
    /// When it left the JWKS (UTC).
    pub removed_at: Option<DateTime<Utc>>,
    /// Its next scheduled change (listings only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<NextTransition>,
}

impl From<&SigningKeyRow> for KeyInfo {
    fn from(row: &SigningKeyRow) -> Self {
        Self {
            kid: row.kid.clone(),
            alg: SigningAlg::parse(&row.alg).unwrap_or(SigningAlg::Es256),
            state: KeyState::parse(&row.state).unwrap_or(KeyState::Revoked),
            created_at: row.created_at.and_utc(),
            activated_at: row.activated_at.map(|t| t.and_utc()),
            retired_at: row.retired_at.map(|t| t.and_utc()),
            revoked_at: row.revoked_at.map(|t| t.and_utc()),
            activates_at: row.activates_at.map(|t| t.and_utc()),
            remove_after: row.remove_after.map(|t| t.and_utc()),
            removed_at: row.removed_at.map(|t| t.and_utc()),
            next: None,
        }
    }
}
