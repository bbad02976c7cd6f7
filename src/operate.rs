//! The meeting workflow on the durable engine: an engine under a
//! [`Policy`], operator commands and what they answer.
//!
//! The engine ([`crate::engine`]) runs any [`Durable`](crate::machine::Durable)
//! machine; this is where spindown's own — [`MeetingWorkflow`] — is put on it.

use std::sync::Arc;

use serde::Serialize;

use crate::clock::Clock;
use crate::engine::{Engine, EngineError, EngineOptions};
use crate::meeting::history::{Entry, Note};
use crate::meeting::{Command, Input, MeetingId, MeetingWorkflow, Outcome, Policy, State};
use crate::store::Store;

/// The durable engine running the meeting workflow.
pub type MeetingEngine = Engine<MeetingWorkflow>;

/// The outcome of an operator command.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResult {
    pub meeting_id: MeetingId,
    pub outcome: Outcome,
    pub state: State,
    #[serde(serialize_with = "notes_as_text")]
    pub notes: Vec<Note>,
}

fn notes_as_text<S: serde::Serializer>(notes: &[Note], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(notes.iter().map(|n| n.to_string()))
}

impl CommandResult {
    /// What a command's history entry says.
    fn of(meeting_id: &MeetingId, entry: Entry) -> Self {
        CommandResult {
            meeting_id: meeting_id.clone(),
            outcome: entry.outcome,
            state: entry.to.unwrap_or(State::Terminated),
            notes: entry.notes,
        }
    }
}

impl Engine<MeetingWorkflow> {
    /// An engine running the meeting workflow under `policy` over `store`.
    /// Use [`Engine::start`] to resume the clocks stored there.
    pub fn new(
        store: Arc<dyn Store>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        options: EngineOptions<MeetingWorkflow>,
    ) -> Self {
        Engine::with_machine(MeetingWorkflow::new(policy), store, clock, options)
    }

    /// [`Engine::new`], resuming the event clock the store holds.
    ///
    /// # Errors
    ///
    /// The store cannot be read.
    pub async fn start(
        store: Arc<dyn Store>,
        policy: Policy,
        clock: Arc<dyn Clock>,
        options: EngineOptions<MeetingWorkflow>,
    ) -> Result<Self, EngineError> {
        Engine::resume(MeetingWorkflow::new(policy), store, clock, options).await
    }

    /// The policy the meetings run under.
    pub fn policy(&self) -> &Policy {
        &self.machine().policy
    }

    /// Apply an operator command to one meeting (see [`Engine::send`]).
    ///
    /// # Errors
    ///
    /// [`EngineError::Unknown`] for `terminate` on a meeting that does not
    /// exist; a store failure.
    pub async fn command(&self, id: &MeetingId, cmd: Command) -> Result<CommandResult, EngineError> {
        let entry = self.send(id, Input::Command(cmd)).await?;
        Ok(CommandResult::of(id, entry))
    }
}
