//! Users, roles and the rules for the credentials they choose.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Identifies a user; never reused.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do. Ordered by power so `role >= Role::Member` reads as "may change things".
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: sees everything, changes nothing.
    Viewer,
    /// Submits and steers work.
    Member,
    /// Also manages users, providers and agents.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may make any state-changing request.
    pub fn can_write(self) -> bool {
        self >= Role::Member
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            // Echoed back: kept short and printable.
            other => Err(CredentialError::UnknownRole(
                other.chars().filter(|c| !c.is_control()).take(32).collect(),
            )),
        }
    }
}

/// Why a username, password or role was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("username must be {min} to {max} characters", min = Username::MIN, max = Username::MAX)]
    UsernameLength,
    #[error("username may contain only lowercase letters, digits, '.', '_' and '-'")]
    UsernameCharacters,
    #[error("password must be {min} to {max} characters", min = NewPassword::MIN, max = NewPassword::MAX)]
    PasswordLength,
    #[error("unknown role '{0}' (expected admin, member or viewer)")]
    UnknownRole(String),
}

impl CredentialError {
    /// The input field refused.
    pub fn field(&self) -> &'static str {
        match self {
            CredentialError::UsernameLength | CredentialError::UsernameCharacters => "username",
            CredentialError::PasswordLength => "password",
            CredentialError::UnknownRole(_) => "role",
        }
    }
}

/// A username that passed the rules: 3..=32 of `[a-z0-9._-]`, starting with a letter or digit.
/// Usernames are compared lowercased so "Alice" and "alice" cannot both exist.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, CredentialError> {
        let name = raw.trim().to_ascii_lowercase();
        let len = name.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(CredentialError::UsernameLength);
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let starts_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_ok || !name.chars().all(allowed) {
            return Err(CredentialError::UsernameCharacters);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = CredentialError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password chosen for a new account: 12..=128 characters (NIST 800-63B: length over
/// composition rules). Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN: usize = 12;
    pub const MAX: usize = 128;

    pub fn parse(raw: String) -> Result<Self, CredentialError> {
        let len = raw.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(CredentialError::PasswordLength);
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A user as every layer may see it: no password hash.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// Who is acting: a user, and the API token they act through, if any (events name both).
#[derive(Clone, Debug, PartialEq)]
pub struct Actor {
    pub user: User,
    pub token: Option<String>,
}

impl From<User> for Actor {
    fn from(user: User) -> Self {
        Self { user, token: None }
    }
}

impl std::ops::Deref for Actor {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_lowercased() {
        assert_eq!(
            Username::parse("  Alice.B ").map(|u| u.0),
            Ok("alice.b".into())
        );
    }

    #[test]
    fn usernames_outside_the_rules_are_refused_with_the_rule() {
        assert_eq!(Username::parse("ab"), Err(CredentialError::UsernameLength));
        assert_eq!(
            Username::parse(&"a".repeat(33)),
            Err(CredentialError::UsernameLength)
        );
        assert_eq!(
            Username::parse("al ice"),
            Err(CredentialError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse("-alice"),
            Err(CredentialError::UsernameCharacters)
        );
        assert_eq!(
            Username::parse("élise"),
            Err(CredentialError::UsernameCharacters)
        );
    }

    #[test]
    fn short_and_huge_passwords_are_refused_and_never_printed() {
        assert!(NewPassword::parse("short".into()).is_err());
        assert!(NewPassword::parse("x".repeat(129)).is_err());
        let ok = NewPassword::parse("correct horse battery".into());
        assert_eq!(
            ok.map(|p| format!("{p:?}")).ok(),
            Some("NewPassword(***)".into())
        );
    }

    #[test]
    fn roles_round_trip_and_only_members_and_admins_write() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
        assert!(!Role::Viewer.can_write());
        assert!(Role::Member.can_write());
        assert!(Role::Admin.can_write());
    }
}
