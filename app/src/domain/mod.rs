//! Pure domain types and rules: everything here compiles for both the server and the browser,
//! does no I/O, and is unit- and property-tested natively.

/// A closed set of names: `ALL`, `as_str`, `Display` and `FromStr` from one list of
/// `Variant => "name"` pairs, so the names are written once.
macro_rules! str_enum {
    ($ty:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),* }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($ty::$variant),)*
                    other => Err(format!("unknown {} '{other}'", stringify!($ty))),
                }
            }
        }
    };
}

pub mod account;
pub mod agent;
pub mod dag_view;
pub mod delegation;
pub mod event;
pub mod ids;
pub mod metrics;
pub mod plan;
pub mod run;
pub mod simulated;
