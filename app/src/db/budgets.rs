//! Budget caps on agents and tasks: reserve a call's worst case before it is made, settle to
//! what it used after. Scopes without a row are uncapped.

use crate::domain::ids::{AgentId, RunId};
pub use crate::domain::usage::Budget;
use sqlx::{PgConnection, PgPool};

/// What one call may use at most, or did use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amount {
    pub tokens: i64,
    pub cost_micros: i64,
}

/// Sets the caps of a scope (`None` for both removes the row's caps but keeps its figures).
pub async fn set_cap(
    conn: &mut PgConnection,
    scope: &str,
    id: uuid::Uuid,
    cap_tokens: Option<i64>,
    cap_cost_micros: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into budgets (scope, id, cap_tokens, cap_cost_micros) values ($1, $2, $3, $4)
         on conflict (scope, id) do update
             set cap_tokens = excluded.cap_tokens, cap_cost_micros = excluded.cap_cost_micros",
        scope,
        id,
        cap_tokens,
        cap_cost_micros
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_conn(
    conn: &mut PgConnection,
    scope: &str,
    id: uuid::Uuid,
) -> Result<Option<Budget>, sqlx::Error> {
    sqlx::query_as!(
        Budget,
        "select cap_tokens, cap_cost_micros, spent_tokens, spent_cost_micros, reserved_tokens,
                reserved_cost_micros
         from budgets where scope = $1 and id = $2",
        scope,
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Which scope refused a reservation, with its cap, for the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub scope: String,
    pub budget: Budget,
}

/// Reserves `worst` on the task and (when given) the agent, all or nothing: each capped scope
/// must have room for it beside what is spent and reserved. The row locks serialise racing
/// reservations, and each re-checks its condition on the row a winner left, so of two calls
/// that fit only one at a time, exactly one passes.
pub async fn reserve(
    pool: &PgPool,
    run: RunId,
    agent: Option<AgentId>,
    worst: Amount,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let agent_id = agent.map(|a| a.0);
    let mut tx = pool.begin().await?;
    let rows = sqlx::query!(
        r#"with want(scope, id) as (values ('task', $1::uuid), ('agent', $2::uuid)),
           existing as (
               select b.scope, b.cap_tokens, b.cap_cost_micros, b.spent_tokens,
                      b.spent_cost_micros, b.reserved_tokens, b.reserved_cost_micros
               from budgets b join want w on b.scope = w.scope and b.id = w.id),
           reserved as (
               update budgets b set reserved_tokens = b.reserved_tokens + $3,
                                    reserved_cost_micros = b.reserved_cost_micros + $4
               from want w
               where b.scope = w.scope and b.id = w.id
                 and (b.cap_tokens is null
                      or b.spent_tokens + b.reserved_tokens + $3 <= b.cap_tokens)
                 and (b.cap_cost_micros is null
                      or b.spent_cost_micros + b.reserved_cost_micros + $4 <= b.cap_cost_micros)
               returning b.scope)
           select e.scope as "scope!", e.cap_tokens, e.cap_cost_micros,
                  e.spent_tokens as "spent_tokens!", e.spent_cost_micros as "spent_cost_micros!",
                  e.reserved_tokens as "reserved_tokens!",
                  e.reserved_cost_micros as "reserved_cost_micros!",
                  exists (select 1 from reserved r where r.scope = e.scope) as "ok!"
           from existing e"#,
        run.0,
        agent_id,
        worst.tokens,
        worst.cost_micros
    )
    .fetch_all(&mut *tx)
    .await?;
    if let Some(r) = rows.iter().find(|r| !r.ok) {
        let refused = Refused {
            scope: r.scope.clone(),
            budget: Budget {
                cap_tokens: r.cap_tokens,
                cap_cost_micros: r.cap_cost_micros,
                spent_tokens: r.spent_tokens,
                spent_cost_micros: r.spent_cost_micros,
                reserved_tokens: r.reserved_tokens,
                reserved_cost_micros: r.reserved_cost_micros,
            },
        };
        tx.rollback().await?;
        return Ok(Err(refused));
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Gives back a reservation of `worst` and counts what the call `used`.
pub async fn settle(
    pool: &PgPool,
    run: RunId,
    agent: Option<AgentId>,
    worst: Amount,
    used: Amount,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update budgets set reserved_tokens = greatest(reserved_tokens - $3, 0),
                            reserved_cost_micros = greatest(reserved_cost_micros - $4, 0),
                            spent_tokens = spent_tokens + $5,
                            spent_cost_micros = spent_cost_micros + $6
         where (scope = 'task' and id = $1) or (scope = 'agent' and id = $2)",
        run.0,
        agent.map(|a| a.0),
        worst.tokens,
        worst.cost_micros,
        used.tokens,
        used.cost_micros
    )
    .execute(pool)
    .await?;
    Ok(())
}
