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
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000000000000.0))]
    #[serde(deserialize_with = "super::number::integral_i64")]
    pub input: i64,
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000000000000.0))]
    #[serde(deserialize_with = "super::number::integral_i64")]
    pub output: i64,
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000000000000.0))]
    #[serde(deserialize_with = "super::number::integral_i64")]
    pub cache_read: i64,
    #[cfg_attr(feature = "ssr", schema(minimum = 0, maximum = 1000000000000.0))]
    #[serde(deserialize_with = "super::number::integral_i64")]
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

/// Parses a price in currency units per million tokens (`3`, `0.30`, `3.75`) into micro-units,
/// exactly: decimal text, never through a float.
pub fn parse_price(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) || frac.len() > 6 {
        return Err(format!(
            "'{raw}' is not a price (a decimal like 3 or 0.375, at most 6 decimals)"
        ));
    }
    let too_big = || format!("'{raw}' is above the most a price may be");
    let whole: i64 = whole.parse().map_err(|_| too_big())?;
    let frac: i64 = format!("{frac:0<6}").parse().unwrap_or(0);
    let micros = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .filter(|m| *m <= MAX_PRICE)
        .ok_or_else(too_big)?;
    Ok(micros)
}

impl Prices {
    /// `input,output[,cache_read,cache_write]` in currency units per million tokens, as an
    /// environment variable gives them (`3,15,0.30,3.75`).
    pub fn parse_list(raw: &str) -> Result<Prices, String> {
        let parts: Vec<&str> = raw.split(',').collect();
        if !(parts.len() == 2 || parts.len() == 4) {
            return Err(format!(
                "prices are input,output or input,output,cache_read,cache_write (got {} values)",
                parts.len()
            ));
        }
        let price = |i: usize| parts.get(i).map_or(Ok(0), |p| parse_price(p));
        Ok(Prices {
            input: price(0)?,
            output: price(1)?,
            cache_read: price(2)?,
            cache_write: price(3)?,
        })
    }
}

/// Calls summed over an attempt, a subtask, an agent or a task: the failed ones count.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub calls: i64,
    pub failed_calls: i64,
    pub input: i64,
    pub cache_read: i64,
    pub cache_write: i64,
    pub output: i64,
    /// Micro-units of the prices' currency.
    pub cost_micros: i64,
    pub latency_ms: i64,
}

impl UsageTotals {
    pub fn tokens(&self) -> i64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
            .saturating_add(self.output)
    }
}

/// One recorded call, as REST and the agent page show it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallView {
    pub id: i64,
    pub task_id: super::ids::RunId,
    pub subtask_id: Option<super::ids::NodeId>,
    pub attempt: Option<i32>,
    pub purpose: String,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    pub cost_micros: i64,
    pub latency_ms: i64,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// One attempt's conversation with its model, as REST and the pages show it.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptView {
    pub subtask_id: super::ids::NodeId,
    pub subtask_key: String,
    pub task_id: super::ids::RunId,
    pub attempt: i32,
    pub agent_id: Option<super::ids::AgentId>,
    /// The messages in order: `role` and `content` blocks (`text`, `tool_call`, `tool_result`).
    #[cfg_attr(feature = "ssr", schema(value_type = Vec<Object>))]
    pub messages: serde_json::Value,
    /// The attempt's model calls, and their totals (the per-attempt rollup).
    pub calls: Vec<CallView>,
    pub usage: UsageTotals,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// A scope's cap and where it stands.
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub cap_tokens: Option<i64>,
    pub cap_cost_micros: Option<i64>,
    pub spent_tokens: i64,
    pub spent_cost_micros: i64,
    pub reserved_tokens: i64,
    pub reserved_cost_micros: i64,
}

/// Micro-units as money for people: `$0.021000`, `$12.50`.
pub fn format_cost(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let (whole, frac) = (m / 1_000_000, m % 1_000_000);
    if whole >= 1 {
        format!("{sign}${whole}.{:02}", frac / 10_000)
    } else {
        format!("{sign}$0.{frac:06}")
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

    #[test]
    fn prices_parse_as_exact_decimals() {
        assert_eq!(parse_price("3"), Ok(3_000_000));
        assert_eq!(parse_price("0.30"), Ok(300_000));
        assert_eq!(parse_price("3.75"), Ok(3_750_000));
        assert_eq!(parse_price("0.000001"), Ok(1));
        for bad in [
            "",
            "-1",
            "1.2345678",
            "1e3",
            "x",
            ".5",
            "1,5",
            "99999999999999999999",
        ] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Prices::parse_list("3,15,0.30,3.75"),
            Ok(Prices {
                input: 3_000_000,
                output: 15_000_000,
                cache_read: 300_000,
                cache_write: 3_750_000
            })
        );
        assert_eq!(Prices::parse_list("0.15,0.6").map(|p| p.cache_write), Ok(0));
        assert!(
            Prices::parse_list("1,2,3")
                .unwrap_err()
                .contains("3 values")
        );
    }

    #[test]
    fn costs_read_as_money() {
        assert_eq!(format_cost(21_000), "$0.021000");
        assert_eq!(format_cost(12_500_000), "$12.50");
        assert_eq!(format_cost(0), "$0.000000");
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

        /// Whatever text a variable holds, parsing gives prices in range or a reason.
        #[test]
        fn any_price_text_is_prices_or_a_reason(raw in "\\PC{0,24}", digits in "[0-9.,]{0,24}") {
            for text in [&raw, &digits] {
                if let Ok(p) = Prices::parse_list(text) {
                    prop_assert!(p.check().is_ok());
                }
            }
        }
    }
}
