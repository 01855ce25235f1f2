//! The blast-radius guard: protected accounts are never locked out, and a burst of destructive
//! actions opens a circuit that holds them instead of locking out the company (a broken policy
//! or a poisoned event stream must not suspend everyone).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::decision::ActionKind;

/// The window the destructive-action cap counts over.
const CAP_WINDOW: Duration = Duration::from_secs(60);

/// What the guard says about one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Never, for this target (protected account).
    Refuse(String),
    /// Not now: the circuit is open. `opened` is set on the action that opened it (alert once).
    Hold {
        /// Why.
        reason: String,
        /// Whether this action opened the circuit.
        opened: bool,
    },
}

/// Protected accounts and the destructive-action circuit of one respond instance.
#[derive(Debug)]
pub struct BlastGuard {
    protected: HashSet<String>,
    cap: u32,
    open_for: Duration,
    recent: VecDeque<Instant>,
    open_until: Option<Instant>,
}

impl BlastGuard {
    /// A guard protecting `protected` (user ids or logins, case-insensitive) that allows `cap`
    /// destructive actions per minute and holds them for `open_for` once the cap is exceeded.
    pub fn new(protected: &[String], cap: u32, open_for: Duration) -> Self {
        BlastGuard {
            protected: protected.iter().map(|p| p.to_lowercase()).collect(),
            cap,
            open_for,
            recent: VecDeque::new(),
            open_until: None,
        }
    }

    /// Actions that lock a user out: never applied to a protected account.
    pub fn is_lockout(kind: ActionKind) -> bool {
        matches!(
            kind,
            ActionKind::OktaSuspendUser
                | ActionKind::OktaResetPassword
                | ActionKind::OktaExpirePassword
                | ActionKind::OktaResetFactors
        )
    }

    /// Actions the per-minute cap counts: lockouts, and clearing sessions (mass sign-out is an
    /// outage too).
    pub fn is_destructive(kind: ActionKind) -> bool {
        Self::is_lockout(kind) || kind == ActionKind::OktaClearSessions
    }

    /// Whether the circuit is open at `now`.
    pub fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }

    /// Judge `kind` on `target` (whose login may be known) at `now`; an allowed destructive
    /// action counts against the cap.
    pub fn check(
        &mut self,
        kind: ActionKind,
        target: &str,
        login: Option<&str>,
        now: Instant,
    ) -> Verdict {
        if Self::is_lockout(kind) {
            let protected = std::iter::once(target)
                .chain(login)
                .find(|name| self.protected.contains(&name.to_lowercase()));
            if let Some(name) = protected {
                return Verdict::Refuse(format!(
                    "{name} is a protected account: {} is never applied to it",
                    kind.as_str()
                ));
            }
        }
        if !Self::is_destructive(kind) {
            return Verdict::Allow;
        }
        if self.is_open(now) {
            return Verdict::Hold {
                reason: self.hold_reason(),
                opened: false,
            };
        }
        while self
            .recent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= CAP_WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.cap as usize {
            self.open_until = Some(now + self.open_for);
            self.recent.clear();
            return Verdict::Hold {
                reason: self.hold_reason(),
                opened: true,
            };
        }
        self.recent.push_back(now);
        Verdict::Allow
    }

    fn hold_reason(&self) -> String {
        format!(
            "circuit open: more than {} destructive actions in a minute; destructive actions are held for {} s and need an analyst",
            self.cap,
            self.open_for.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_accounts_are_never_locked_out_by_id_or_login() {
        let mut guard = BlastGuard::new(
            &["00uBREAKGLASS".into(), "Admin@Acme.com".into()],
            100,
            Duration::from_secs(60),
        );
        let now = Instant::now();
        for kind in [ActionKind::OktaSuspendUser, ActionKind::OktaResetPassword] {
            assert!(matches!(
                guard.check(kind, "00ubreakglass", None, now),
                Verdict::Refuse(_)
            ));
            assert!(matches!(
                guard.check(kind, "00u2", Some("admin@acme.com"), now),
                Verdict::Refuse(_)
            ));
        }
        // Telling the channel about a protected account is fine.
        assert_eq!(
            guard.check(ActionKind::SlackNotify, "00uBREAKGLASS", None, now),
            Verdict::Allow
        );
        assert_eq!(
            guard.check(
                ActionKind::OktaSuspendUser,
                "00u2",
                Some("bob@acme.com"),
                now
            ),
            Verdict::Allow
        );
    }

    #[test]
    fn the_circuit_opens_past_the_cap_holds_then_closes() {
        let mut guard = BlastGuard::new(&[], 3, Duration::from_secs(600));
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(
                guard.check(ActionKind::OktaSuspendUser, &format!("u{i}"), None, start),
                Verdict::Allow
            );
        }
        // Non-destructive actions never count nor wait.
        assert_eq!(
            guard.check(ActionKind::PagerdutyTrigger, "u9", None, start),
            Verdict::Allow
        );
        let fourth = guard.check(ActionKind::OktaClearSessions, "u3", None, start);
        assert!(
            matches!(fourth, Verdict::Hold { opened: true, .. }),
            "{fourth:?}"
        );
        let fifth = guard.check(ActionKind::OktaSuspendUser, "u4", None, start);
        assert!(matches!(fifth, Verdict::Hold { opened: false, .. }));
        assert_eq!(
            guard.check(ActionKind::SlackNotify, "u4", None, start),
            Verdict::Allow
        );
        let later = start + Duration::from_secs(601);
        assert_eq!(
            guard.check(ActionKind::OktaSuspendUser, "u5", None, later),
            Verdict::Allow
        );
    }

    #[test]
    fn the_cap_counts_a_sliding_minute() {
        let mut guard = BlastGuard::new(&[], 2, Duration::from_secs(600));
        let start = Instant::now();
        assert_eq!(
            guard.check(ActionKind::OktaSuspendUser, "a", None, start),
            Verdict::Allow
        );
        assert_eq!(
            guard.check(
                ActionKind::OktaSuspendUser,
                "b",
                None,
                start + Duration::from_secs(30)
            ),
            Verdict::Allow
        );
        // The first one left the window.
        assert_eq!(
            guard.check(
                ActionKind::OktaSuspendUser,
                "c",
                None,
                start + Duration::from_secs(61)
            ),
            Verdict::Allow
        );
    }
}
