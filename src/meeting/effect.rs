//! Side effects, as data: what a termination asks the outside world to do.

use serde::{Deserialize, Serialize};

use super::ids::InstanceId;
use super::model::Reason;
use crate::named::names;
use crate::time::Timestamp;

names! {
    /// The kinds of side effect.
    pub EffectKind ("effect kind") {
        /// `ec2:TerminateInstances`.
        Terminate = "terminate",
        /// The conditional `UpdateItem` on the meetings table.
        WriteBack = "write_back",
    }
}

/// A side effect to run after the step that caused it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// `ec2:TerminateInstances` on these instances (sorted, deduplicated, never empty).
    Terminate { instances: Vec<InstanceId> },
    /// `SET status = TERMINATED, termination_reason, terminated_at` unless already TERMINATED.
    WriteBack { reason: Reason, terminated_at: Timestamp },
}

impl Effect {
    pub fn kind(&self) -> EffectKind {
        match self {
            Effect::Terminate { .. } => EffectKind::Terminate,
            Effect::WriteBack { .. } => EffectKind::WriteBack,
        }
    }
}
