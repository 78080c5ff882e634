//! Restart policies (`no`, `always`, `unless-stopped`, `on-failure[:N]`) and Docker's
//! back-off: 100 ms doubling up to one minute, reset once a container ran 10 s or more.

use std::time::Duration;

use serde_json::Value;
use skiff_api::ApiError;

const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A container that ran this long counts as healthy: the back-off starts over.
const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyName {
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub name: PolicyName,
    /// on-failure only; 0 means unlimited.
    pub max_retries: i64,
}

impl Policy {
    pub const NO: Policy = Policy {
        name: PolicyName::No,
        max_retries: 0,
    };

    /// Reads `HostConfig.RestartPolicy` (`{"Name":..,"MaximumRetryCount":..}`), with
    /// Docker's messages for bad values.
    pub fn from_host_config(host_config: &Value) -> Result<Policy, ApiError> {
        let Some(p) = host_config.get("RestartPolicy").filter(|v| !v.is_null()) else {
            return Ok(Policy::NO);
        };
        Self::from_value(p)
    }

    pub fn from_value(p: &Value) -> Result<Policy, ApiError> {
        let name = p.get("Name").and_then(Value::as_str).unwrap_or("");
        let max = p
            .get("MaximumRetryCount")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let name = match name {
            "" | "no" => PolicyName::No,
            "always" => PolicyName::Always,
            "unless-stopped" => PolicyName::UnlessStopped,
            "on-failure" => PolicyName::OnFailure,
            other => {
                return Err(ApiError::invalid_argument(format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                )))
            }
        };
        if max < 0 {
            return Err(ApiError::invalid_argument(
                "invalid restart policy: maximum retry count cannot be negative",
            ));
        }
        if max != 0 && name != PolicyName::OnFailure {
            return Err(ApiError::invalid_argument(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
        Ok(Policy {
            name,
            max_retries: max,
        })
    }

    pub fn is_no(&self) -> bool {
        self.name == PolicyName::No
    }

    /// After an exit: restart? `restart_count` counts the restarts done so far.
    pub fn should_restart(
        &self,
        exit_code: i32,
        restart_count: u64,
        manually_stopped: bool,
    ) -> bool {
        if manually_stopped {
            return false;
        }
        match self.name {
            PolicyName::No => false,
            PolicyName::Always | PolicyName::UnlessStopped => true,
            PolicyName::OnFailure => {
                exit_code != 0
                    && (self.max_retries == 0 || (restart_count as i64) < self.max_retries)
            }
        }
    }

    /// At daemon start, for a container that is not running.
    pub fn start_on_boot(&self, manually_stopped: bool) -> bool {
        match self.name {
            PolicyName::Always => true,
            PolicyName::UnlessStopped => !manually_stopped,
            _ => false,
        }
    }
}

/// The delay before the next restart of one container.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: INITIAL_DELAY,
        }
    }
}

impl Backoff {
    /// The delay to wait now, given how long the container ran before it exited.
    pub fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.next = INITIAL_DELAY;
        }
        let d = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_parse_with_dockers_messages() {
        let p = |v| Policy::from_host_config(&json!({ "RestartPolicy": v }));
        assert_eq!(p(json!({"Name":""})).unwrap(), Policy::NO);
        assert_eq!(
            p(json!({"Name":"on-failure","MaximumRetryCount":2})).unwrap(),
            Policy {
                name: PolicyName::OnFailure,
                max_retries: 2
            }
        );
        assert!(p(json!({"Name":"sometimes"}))
            .unwrap_err()
            .message
            .contains("unknown policy 'sometimes'"));
        assert!(p(json!({"Name":"always","MaximumRetryCount":3}))
            .unwrap_err()
            .message
            .contains("only be used with 'on-failure'"));
        assert!(p(json!({"Name":"on-failure","MaximumRetryCount":-1})).is_err());
        assert_eq!(Policy::from_host_config(&json!({})).unwrap(), Policy::NO);
    }

    #[test]
    fn restart_decisions() {
        let on_failure2 = Policy {
            name: PolicyName::OnFailure,
            max_retries: 2,
        };
        assert!(on_failure2.should_restart(1, 0, false));
        assert!(on_failure2.should_restart(1, 1, false));
        assert!(!on_failure2.should_restart(1, 2, false));
        assert!(!on_failure2.should_restart(0, 0, false));
        let always = Policy {
            name: PolicyName::Always,
            max_retries: 0,
        };
        assert!(always.should_restart(0, 100, false));
        assert!(!always.should_restart(0, 0, true));
        assert!(always.start_on_boot(true));
        let unless = Policy {
            name: PolicyName::UnlessStopped,
            max_retries: 0,
        };
        assert!(!unless.start_on_boot(true));
        assert!(unless.start_on_boot(false));
        assert!(!Policy::NO.should_restart(1, 0, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert_eq!(b.delay(short), Duration::from_millis(100));
        assert_eq!(b.delay(short), Duration::from_millis(200));
        assert_eq!(b.delay(short), Duration::from_millis(400));
        for _ in 0..20 {
            b.delay(short);
        }
        assert_eq!(b.delay(short), MAX_DELAY);
        assert_eq!(b.delay(Duration::from_secs(10)), Duration::from_millis(100));
    }
}
