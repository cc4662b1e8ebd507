//! Token usage and its cost. Providers count differently (OpenAI's `prompt_tokens` include the
//! cached ones, Anthropic's `input_tokens` exclude them); everything here is already normalised
//! to four disjoint counts, and money is integer micro-units (millionths of the price's
//! currency), never floats.

use serde::{Deserialize, Serialize};

/// One call's tokens, as four disjoint counts.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens read neither from nor into the provider's prompt cache.
    pub input: i64,
    pub cache_read: i64,
    pub cache_write: i64,
    pub output: i64,
}

impl Usage {
    pub fn total(&self) -> i64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
            .saturating_add(self.output)
    }

    pub fn add(&mut self, other: &Usage) {
        self.input = self.input.saturating_add(other.input);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
        self.output = self.output.saturating_add(other.output);
    }
}

/// A model's prices in micro-units per million tokens (`3_000_000` is 3.00 per million).
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    pub cache_write: i64,
}

/// The most a price may be (1,000,000.00 per million tokens): keeps every product in `i128`
/// far from overflow and refuses typos of many zeros.
pub const MAX_PRICE: i64 = 1_000_000_000_000;

impl Prices {
    /// Why these prices are refused, if they are.
    pub fn check(&self) -> Result<(), String> {
        for (name, p) in [
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
        ] {
            if !(0..=MAX_PRICE).contains(&p) {
                return Err(format!(
                    "price {name} must be 0 to {MAX_PRICE} micro-units per million tokens (got {p})"
                ));
            }
        }
        Ok(())
    }

    /// What `usage` costs, in micro-units, rounded up: a call is never free by rounding.
    pub fn cost(&self, usage: &Usage) -> i64 {
        let micro_mtok = i128::from(usage.input.max(0)) * i128::from(self.input)
            + i128::from(usage.output.max(0)) * i128::from(self.output)
            + i128::from(usage.cache_read.max(0)) * i128::from(self.cache_read)
            + i128::from(usage.cache_write.max(0)) * i128::from(self.cache_write);
        let cost = (micro_mtok + 999_999) / 1_000_000;
        i64::try_from(cost).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cost_is_per_million_tokens_rounded_up() {
        let prices = Prices {
            input: 3_000_000,
            output: 15_000_000,
            cache_read: 300_000,
            cache_write: 3_750_000,
        };
        let usage = Usage {
            input: 1_000,
            cache_read: 10_000,
            cache_write: 2_000,
            output: 500,
        };
        // 3000 + 3000 + 7500 + 7500 micro-units.
        assert_eq!(prices.cost(&usage), 21_000);
        let one = Usage {
            output: 1,
            ..Usage::default()
        };
        assert_eq!(prices.cost(&one), 15);
        let cheap = Prices {
            input: 1,
            ..Prices::default()
        };
        assert_eq!(
            cheap.cost(&Usage {
                input: 1,
                ..Usage::default()
            }),
            1
        );
        assert_eq!(Prices::default().cost(&usage), 0);
    }

    #[test]
    fn prices_out_of_range_are_refused_by_name() {
        let err = Prices {
            cache_write: -1,
            ..Prices::default()
        }
        .check()
        .unwrap_err();
        assert!(err.contains("cache_write"), "{err}");
    }

    proptest! {
        #[test]
        fn cost_never_overflows_and_grows_with_usage(
            a in 0i64..i64::MAX, b in 0i64..i64::MAX, p in 0..=MAX_PRICE,
        ) {
            let prices = Prices { input: p, output: p, cache_read: p, cache_write: p };
            let small = Usage { input: a.min(b), ..Usage::default() };
            let big = Usage { input: a.max(b), output: a, cache_read: b, cache_write: a };
            prop_assert!(prices.cost(&small) <= prices.cost(&big));
            prop_assert!(prices.cost(&big) >= 0);
        }
    }
}
