//! The planner: turns a pending task into a validated DAG of subtasks, or one fallback subtask.

use super::provider::{CompletionRequest, Purpose};
use super::{Engine, Outcome};
use app::db::runs;
use app::domain::agent::CAPABILITIES;
use app::domain::plan::{PlanDraft, SubtaskDraft, ValidatedPlan};
use app::domain::simulated;

const PLANNER_SYSTEM: &str = "You split a task into subtasks for a team of agents.";

/// The prompt a real model gets; the JSON shape is the schema `PlanDraft` parses.
fn planner_prompt(description: &str) -> String {
    format!(
        "Decompose the task below into subtasks. Answer with JSON only, shaped as \
         {{\"subtasks\": [{{\"key\": \"s1\", \"description\": \"...\", \
         \"required_capabilities\": [\"...\"], \"depends_on\": [\"s0\"], \"priority\": 0}}]}}. \
         Capabilities: {}. Dependencies must not form a cycle.\n\nTask:\n{description}",
        CAPABILITIES.join(", ")
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
    let draft = PlanDraft {
        subtasks: vec![SubtaskDraft {
            key: "s1".into(),
            description: description.to_owned(),
            required_capabilities: vec![simulated::capability_for(description).to_owned()],
            depends_on: vec![],
            priority: priority.clamp(0, 10),
        }],
    };
    // One node, known capability, no edges: always valid.
    ValidatedPlan {
        order: vec![0],
        subtasks: draft.subtasks,
    }
}

impl Engine {
    /// Plans one pending task, if there is one.
    pub async fn plan_once(&self) -> anyhow::Result<Outcome> {
        let claim = {
            let mut conn = self.pool.acquire().await?;
            runs::claim_for_planning(&mut conn, self.config.lease_secs).await?
        };
        let Some(claim) = claim else {
            return Ok(Outcome::Idle);
        };
        let req = CompletionRequest {
            model: self.config.planner_model.clone(),
            system: PLANNER_SYSTEM.into(),
            prompt: planner_prompt(&claim.description),
            purpose: Purpose::Plan {
                description: claim.description.clone(),
                priority: claim.priority,
            },
        };
        let answer = match self.providers.get(&self.config.planner_provider) {
            Ok(p) => p.complete(&req).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (plan, by, note) = match answer.and_then(|c| parse_plan(&c.text)) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_found_inside_prose_and_fences() {
        let text = "Here you go:\n```json\n{\"subtasks\": [{\"key\": \"a\", \"description\": \"x\"}]}\n```";
        let plan = parse_plan(text).unwrap();
        assert_eq!(plan.subtasks.len(), 1);
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
    }
}
