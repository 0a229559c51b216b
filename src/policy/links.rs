//! Link rules, in one pure module for every kind of link and every front-end that
//! serves one: expiry, usage limit, password, allowed e-mails. No I/O: callers
//! bring the link's facts, the visitor's grant and the time.
//!
//! Usage is *counted* elsewhere (one conditional UPDATE in the store reserves a
//! use, refunded on failure); this module decides what a state means.

use std::time::Duration;

use crate::clock::Millis;

/// The rule facts of a link, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRules {
    /// `None`: never expires.
    pub expires_at: Option<Millis>,
    /// `None`: unlimited; `Some(1)`: one-time.
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub has_password: bool,
    /// Lower-case addresses; empty: anyone with the URL.
    pub allowed_emails: Vec<String>,
    pub revoked: bool,
    /// Copies for a send link are still being made.
    pub draft: bool,
}

/// Where a link stands, whoever asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Draft,
    Active,
    Expired,
    Exhausted,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Exhausted => "exhausted",
            Status::Revoked => "revoked",
        }
    }

    /// Ended links answer 410 with a page saying which.
    pub fn ended(self) -> bool {
        matches!(self, Status::Expired | Status::Exhausted | Status::Revoked)
    }
}

/// The link's status at `now`. Revocation wins over everything, then expiry, then
/// the usage limit.
pub fn status(rules: &LinkRules, now: Millis) -> Status {
    if rules.revoked {
        Status::Revoked
    } else if rules.expires_at.is_some_and(|t| now >= t) {
        Status::Expired
    } else if rules.max_uses.is_some_and(|m| rules.uses >= m) {
        Status::Exhausted
    } else if rules.draft {
        Status::Draft
    } else {
        Status::Active
    }
}

/// What a visitor has proven so far on this link (carried in a signed grant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proof {
    pub password: bool,
    /// The verified e-mail address, lower-case.
    pub email: Option<String>,
    /// The visitor's grant already holds one of the link's uses (charged or in
    /// flight): they may go on downloading after the limit is reached.
    pub holds_use: bool,
}

/// What the visitor must do next to see the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The link has ended (or is not ready): show why.
    Closed(Status),
    Password,
    /// Enter an e-mail address to receive a code.
    Email,
    /// Open: files may be listed and downloaded.
    Open,
}

/// Decides what `proof` unlocks at `now`. The password comes first, then the
/// e-mail check; a proof for another address never opens a link.
pub fn gate(rules: &LinkRules, proof: &Proof, now: Millis) -> Gate {
    let s = status(rules, now);
    let paid = s == Status::Exhausted && proof.holds_use;
    if s != Status::Active && !paid {
        return Gate::Closed(s);
    }
    if rules.has_password && !proof.password {
        return Gate::Password;
    }
    if !rules.allowed_emails.is_empty() {
        let ok = proof
            .email
            .as_deref()
            .is_some_and(|e| rules.allowed_emails.iter().any(|a| a == e));
        if !ok {
            return Gate::Email;
        }
    }
    Gate::Open
}

/// Whether a code should really be mailed to `email`. The page answers the same
/// either way, so visitors cannot learn who is on the list.
pub fn may_receive_code(rules: &LinkRules, email: &str) -> bool {
    let email = normalise_email(email);
    rules.allowed_emails.contains(&email)
}

pub fn normalise_email(e: &str) -> String {
    e.trim().to_lowercase()
}

/// A plausible address: one `@`, something on both sides, no spaces or controls.
pub fn valid_email(e: &str) -> bool {
    let e = e.trim();
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && e.len() <= 254
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// The administrator's limits on new links (`[links]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPolicy {
    /// Longest allowed lifetime; `None`: no cap.
    pub max_expiry: Option<Duration>,
    pub allow_never: bool,
    pub require_password: bool,
    /// Lifetime when none is asked for.
    pub default_expiry: Duration,
}

impl Default for LinkPolicy {
    fn default() -> Self {
        LinkPolicy {
            max_expiry: None,
            allow_never: true,
            require_password: false,
            default_expiry: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Parses an expiry as staff type it: the presets `1d`, `3d`, `1w`, `2w`, `1m`,
/// `never`, any duration (`36h`, `10days`), or a date (`2026-12-31` or RFC 3339).
/// Returns the expiry time (`None` for never) checked against `policy`.
pub fn parse_expiry(
    text: Option<&str>,
    policy: &LinkPolicy,
    now: Millis,
) -> Result<Option<Millis>, String> {
    let day = 86_400_000i64;
    let at = match text.map(str::trim) {
        None | Some("") => Some(now + policy.default_expiry.as_millis() as i64),
        Some("never") => None,
        Some("1d") => Some(now + day),
        Some("3d") => Some(now + 3 * day),
        Some("1w") => Some(now + 7 * day),
        Some("2w") => Some(now + 14 * day),
        Some("1m") => Some(now + 30 * day),
        Some(t) => Some(parse_time_or_duration(t, now)?),
    };
    match at {
        Some(t) if t - now > LONGEST_EXPIRY_MS => {
            Err("an expiry may be at most 100 years away (use never for no expiry)".into())
        }
        None if !policy.allow_never => Err("links that never expire are not allowed here".into()),
        Some(t) if t <= now => Err("the expiry is in the past".into()),
        Some(t)
            if policy
                .max_expiry
                .is_some_and(|m| t - now > m.as_millis() as i64) =>
        {
            Err(format!(
                "links may last at most {}",
                humantime::format_duration(policy.max_expiry.unwrap_or_default())
            ))
        }
        other => Ok(other),
    }
}

/// The furthest expiry accepted (100 years): beyond it dates stop being
/// writable and arithmetic on them overflows.
const LONGEST_EXPIRY_MS: Millis = 36_525 * 86_400_000;

fn parse_time_or_duration(t: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(d) = humantime::parse_duration(t) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now.saturating_add(ms));
    }
    let stamp = if t.len() == 10 {
        format!("{t}T23:59:59Z")
    } else {
        t.to_string()
    };
    humantime::parse_rfc3339_weak(&stamp)
        .map(crate::clock::to_ms)
        .map_err(|_| format!("{t:?} is not an expiry: use 1d, 3d, 1w, 2w, 1m, never, a duration such as 36h, or a date such as 2026-12-31"))
}

/// Checks the rules of a new link against the policy.
pub fn check_new(has_password: bool, policy: &LinkPolicy) -> Result<(), String> {
    if policy.require_password && !has_password {
        return Err("every link needs a password here (--password-stdin)".into());
    }
    Ok(())
}

/// Whether a link may be changed to these rules: the same policy as a new
/// link (a password stays required under `require_password`).
pub fn check_edit(has_password: bool, policy: &LinkPolicy) -> Result<(), String> {
    if policy.require_password && !has_password {
        return Err("every link needs a password here: it cannot be removed".into());
    }
    Ok(())
}

/// Deleting a link (record and copies) and restoring a cancelled one are for
/// administrators; other staff cancel (revoke).
pub fn check_admin_action(action: &str, admin: bool) -> Result<(), String> {
    if admin {
        Ok(())
    } else {
        Err(format!(
            "only an administrator may {action} a link; cancel (revoke) it instead"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    fn rules() -> LinkRules {
        LinkRules {
            expires_at: Some(NOW + 1000),
            max_uses: None,
            uses: 0,
            has_password: false,
            allowed_emails: vec![],
            revoked: false,
            draft: false,
        }
    }

    #[test]
    fn status_order_revoked_expired_exhausted() {
        let mut r = rules();
        assert_eq!(status(&r, NOW), Status::Active);
        assert_eq!(status(&r, NOW + 1000), Status::Expired);
        r.max_uses = Some(1);
        r.uses = 1;
        assert_eq!(status(&r, NOW), Status::Exhausted);
        assert_eq!(status(&r, NOW + 5000), Status::Expired);
        r.revoked = true;
        assert_eq!(status(&r, NOW + 5000), Status::Revoked);
        let mut d = rules();
        d.draft = true;
        assert_eq!(status(&d, NOW), Status::Draft);
        assert!(Status::Revoked.ended() && !Status::Draft.ended());
    }

    #[test]
    fn password_then_email() {
        let mut r = rules();
        r.has_password = true;
        r.allowed_emails = vec!["a@example.com".into()];
        let none = Proof::default();
        assert_eq!(gate(&r, &none, NOW), Gate::Password);
        let pw = Proof {
            password: true,
            ..Proof::default()
        };
        assert_eq!(gate(&r, &pw, NOW), Gate::Email);
        let wrong = Proof {
            password: true,
            email: Some("b@example.com".into()),
            ..Proof::default()
        };
        assert_eq!(gate(&r, &wrong, NOW), Gate::Email);
        let right = Proof {
            password: true,
            email: Some("a@example.com".into()),
            ..Proof::default()
        };
        assert_eq!(gate(&r, &right, NOW), Gate::Open);
        assert_eq!(gate(&r, &right, NOW + 1000), Gate::Closed(Status::Expired));
        assert_eq!(gate(&rules(), &none, NOW), Gate::Open);
    }

    #[test]
    fn a_visitor_holding_a_use_goes_on_after_the_limit_but_not_after_the_end() {
        let mut r = rules();
        r.max_uses = Some(1);
        r.uses = 1;
        let holder = Proof {
            holds_use: true,
            ..Proof::default()
        };
        assert_eq!(
            gate(&r, &Proof::default(), NOW),
            Gate::Closed(Status::Exhausted)
        );
        assert_eq!(gate(&r, &holder, NOW), Gate::Open);
        assert_eq!(gate(&r, &holder, NOW + 1000), Gate::Closed(Status::Expired));
        r.revoked = true;
        assert_eq!(gate(&r, &holder, NOW), Gate::Closed(Status::Revoked));
        // Holding a use never skips the password.
        r.revoked = false;
        r.has_password = true;
        assert_eq!(gate(&r, &holder, NOW), Gate::Password);
    }

    #[test]
    fn edits_keep_a_required_password_and_admins_alone_delete() {
        let open = LinkPolicy::default();
        let strict = LinkPolicy {
            require_password: true,
            ..LinkPolicy::default()
        };
        assert!(check_edit(false, &open).is_ok());
        assert!(check_edit(true, &strict).is_ok());
        assert!(check_edit(false, &strict)
            .unwrap_err()
            .contains("cannot be removed"));
        assert!(check_admin_action("delete", true).is_ok());
        let e = check_admin_action("delete", false).unwrap_err();
        assert!(e.contains("only an administrator may delete"), "{e}");
    }

    #[test]
    fn codes_go_only_to_listed_addresses() {
        let mut r = rules();
        r.allowed_emails = vec!["a@example.com".into()];
        assert!(may_receive_code(&r, " A@Example.com "));
        assert!(!may_receive_code(&r, "b@example.com"));
        assert!(valid_email("a@example.com"));
        for bad in ["", "a", "a@b", "@b.c", "a@.c", "a b@c.d", "a@b.c."] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn expiry_presets_durations_dates_and_policy() {
        let p = LinkPolicy::default();
        let day = 86_400_000;
        assert_eq!(parse_expiry(None, &p, NOW), Ok(Some(NOW + 7 * day)));
        assert_eq!(parse_expiry(Some("3d"), &p, NOW), Ok(Some(NOW + 3 * day)));
        assert_eq!(
            parse_expiry(Some("36h"), &p, NOW),
            Ok(Some(NOW + 36 * 3_600_000))
        );
        assert_eq!(parse_expiry(Some("never"), &p, NOW), Ok(None));
        assert!(parse_expiry(Some("2099-12-31"), &p, NOW).unwrap().is_some());
        assert!(parse_expiry(Some("2000-01-01"), &p, NOW)
            .unwrap_err()
            .contains("past"));
        assert!(parse_expiry(Some("soon"), &p, NOW).is_err());
        assert!(parse_expiry(Some("300000y"), &p, NOW).is_err());
        assert!(parse_expiry(Some("9999999999999999y"), &p, NOW).is_err());
        assert!(parse_expiry(Some("99999-01-01"), &p, NOW).is_err());
        assert!(parse_expiry(Some("50y"), &p, NOW).is_ok());
        let strict = LinkPolicy {
            max_expiry: Some(Duration::from_secs(14 * 86_400)),
            allow_never: false,
            require_password: true,
            ..p
        };
        assert!(parse_expiry(Some("never"), &strict, NOW).is_err());
        assert!(parse_expiry(Some("1m"), &strict, NOW)
            .unwrap_err()
            .contains("at most"));
        assert!(parse_expiry(Some("2w"), &strict, NOW).is_ok());
        assert!(check_new(false, &strict).is_err());
        assert!(check_new(true, &strict).is_ok());
    }
}
