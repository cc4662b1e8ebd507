//! The planner: turns a pending task into a validated DAG of subtasks, or one fallback subtask.

use super::{Engine, Outcome};
use crate::llm::{ChatRequest, Purpose};
use app::db::runs;
use app::domain::agent::CAPABILITIES;
use app::domain::plan::{MAX_NODES, PlanDraft, ValidatedPlan, plan_schema};
use app::domain::simulated;
use futures_util::FutureExt;

const PLANNER_SYSTEM: &str = "You split a task into subtasks for a team of agents.";

/// Claims of one run beyond this fall back without asking the model: planning died on it
/// (a panic takes the claim's lease with it, a crash the whole process) that many times.
pub const MAX_PLANNING_ATTEMPTS: i32 = 3;

/// The prompt a real model gets, with the JSON schema `ValidatedPlan::parse` enforces.
fn planner_prompt(description: &str) -> String {
    format!(
        "Decompose the task below into subtasks. Answer with JSON only, matching this schema: \
         {}. Keys are short and unique; `depends_on` names keys of other subtasks, each at most \
         once, and must not form a cycle. At most {} subtasks.\n\nTask:\n{description}",
        plan_schema(&CAPABILITIES),
        MAX_NODES
    )
}

/// The JSON object inside a model's answer (models like to wrap it in prose or fences).
fn extract_json(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

/// Parses and checks a planner answer; the error says why it was refused.
pub fn parse_plan(text: &str) -> Result<ValidatedPlan, String> {
    let json = extract_json(text).ok_or("the planner answered without a JSON object")?;
    let draft: PlanDraft = serde_json::from_str(json)
        .map_err(|e| format!("the plan does not match the schema: {e}"))?;
    ValidatedPlan::parse(draft, &CAPABILITIES).map_err(|e| format!("the plan was refused: {e}"))
}

/// The single subtask a task falls back to when planning fails.
pub fn fallback_plan(description: &str, priority: i16) -> ValidatedPlan {
    ValidatedPlan::fallback(
        description,
        simulated::capability_for(description),
        priority,
    )
}

impl Engine {
    /// Plans one pending task, if there is one. Whatever the model or the parser does with the
    /// task (an error, a panic), the task gets a plan or a reason; the loop goes on.
    pub async fn plan_once(&self) -> anyhow::Result<Outcome> {
        let claim = {
            let mut conn = self.pool.acquire().await?;
            runs::claim_for_planning(&mut conn, self.config.lease_secs).await?
        };
        let Some(claim) = claim else {
            return Ok(Outcome::Idle);
        };
        if claim.attempt > MAX_PLANNING_ATTEMPTS + 1 {
            // Even the fallback could not be stored that many times.
            let reason = format!(
                "the task could not be planned in {} attempts",
                claim.attempt - 1
            );
            tracing::error!(task = %claim.id, %reason, "giving up on a task");
            let mut tx = self.pool.begin().await?;
            runs::fail_run(&mut tx, claim.id, &reason, 0).await?;
            tx.commit().await?;
            self.work_changed(false);
            return Ok(Outcome::Worked);
        }
        let proposed = if claim.attempt > MAX_PLANNING_ATTEMPTS {
            Err(format!(
                "planning did not finish in {MAX_PLANNING_ATTEMPTS} attempts"
            ))
        } else {
            self.propose(&claim).await
        };
        let (plan, by, note) = match proposed {
            Ok(plan) => (plan, "planner", None),
            Err(reason) => {
                tracing::warn!(task = %claim.id, %reason, "planning failed; one fallback subtask");
                (
                    fallback_plan(&claim.description, claim.priority),
                    "fallback",
                    Some(reason),
                )
            }
        };
        let mut tx = self.pool.begin().await?;
        let started = self
            .store_plan(&mut tx, claim.id, &plan, by, note.as_deref())
            .await?;
        tx.commit().await?;
        if let Some(started) = started {
            self.after_commit(started);
        }
        Ok(Outcome::Worked)
    }

    /// Asks the planner model for a plan and checks it. A panic anywhere in the call or the
    /// parsing is this task's failure, with the panic's message as the reason.
    async fn propose(&self, claim: &runs::PlanningClaim) -> Result<ValidatedPlan, String> {
        let mut req = ChatRequest::new(
            self.config.planner_model.clone(),
            PLANNER_SYSTEM,
            planner_prompt(&claim.description),
        );
        req.purpose = Some(Purpose::Plan {
            description: claim.description.clone(),
            priority: claim.priority,
        });
        let attempt = async {
            let provider = self
                .providers
                .get(&self.config.planner_provider)
                .map_err(|e| e.to_string())?;
            let answer = provider.model.chat(&req).await.map_err(|e| e.to_string())?;
            parse_plan(&answer.text())
        };
        match std::panic::AssertUnwindSafe(attempt).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let why = crate::supervisor::panic_message(&*panic);
                tracing::error!(task = %claim.id, panic = %why, "the planner panicked on a task");
                Err(format!("the planner failed on this task: {why}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_inside_prose_and_fences() {
        let text = "Here you go:\n```json\n{\"subtasks\": [{\"key\": \"a\", \"description\": \"x\"}]}\n```";
        let plan = parse_plan(text).unwrap();
        assert_eq!(plan.subtasks().len(), 1);
    }

    #[test]
    fn answers_that_break_the_schema_or_the_rules_are_refused_with_a_reason() {
        assert!(
            parse_plan("no json here")
                .unwrap_err()
                .contains("without a JSON object")
        );
        assert!(
            parse_plan("{\"tasks\": []}")
                .unwrap_err()
                .contains("schema")
        );
        let cyclic = r#"{"subtasks": [{"key": "a", "description": "x", "depends_on": ["b"]},
                                       {"key": "b", "description": "y", "depends_on": ["a"]}]}"#;
        assert!(parse_plan(cyclic).unwrap_err().contains("cycle"));
        let repeated = r#"{"subtasks": [{"key": "s1", "description": "x"},
                                         {"key": "s2", "description": "y", "depends_on": ["s1", "s1"]}]}"#;
        assert!(parse_plan(repeated).unwrap_err().contains("twice"));
    }

    proptest::proptest! {
        /// Whatever a model answers — arbitrary Unicode, arbitrary JSON — the parser answers
        /// with a plan or a reason, never a panic.
        #[test]
        fn any_answer_is_a_plan_or_a_reason(
            text in ".{0,200}",
            key in ".{0,8}",
            description in ".{0,40}",
            deps in proptest::collection::vec(".{0,3}", 0..4),
        ) {
            let _ = parse_plan(&text);
            let answer = serde_json::json!({ "subtasks": [
                { "key": key, "description": description, "depends_on": deps },
                { "key": "s1", "description": text, "required_capabilities": [key] },
            ]});
            let _ = parse_plan(&format!("Here it is: {answer} {text}"));
        }
    }
}
