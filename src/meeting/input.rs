//! What the machine reads: stream records, timer fires, operator commands.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::MeetingId;
use super::model::{EventName, TimerKind};
use crate::named::names;
use crate::time::{Span, Timestamp};

/// An image (`NewImage` for INSERT/MODIFY, `OldImage` for REMOVE), decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    pub meet_time: Option<Timestamp>,
    pub created_at: Option<Timestamp>,
    pub duration: Option<Span>,
    pub status: Option<String>,
    pub teacher_data: bool,
    pub student_data: bool,
    /// The session-data attributes are *present*, whatever their type
    /// (`{"NULL": true}` included) — how the old Lambdas tested for data
    /// (`'teacher_session_data' in new_image`); read by the legacy model.
    pub teacher_attr: bool,
    pub student_attr: bool,
}

impl Image {
    /// The start this image gives a new meeting: `meet_time`, else `created_at`.
    pub fn start(&self) -> Option<Timestamp> {
        self.meet_time.or(self.created_at)
    }
}

names! {
    /// Where an instance id was read.
    pub InstanceSource ("instance source") {
        NewTeacher = "NewImage.teacher_ec2_id",
        NewStudent = "NewImage.student_ec2_id",
        OldTeacher = "OldImage.teacher_ec2_id",
        OldStudent = "OldImage.student_ec2_id",
        /// `spindown schedule --teacher-ec2`.
        Teacher = "--teacher-ec2",
        /// `spindown schedule --student-ec2`.
        Student = "--student-ec2",
    }
}

/// An instance-id attribute as found in a record, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenInstance {
    pub source: InstanceSource,
    pub value: String,
}

/// A well-formed stream record, ready for the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_id: Option<String>,
    pub event_name: EventName,
    /// `dynamodb.ApproximateCreationDateTime`; `None` means "the clock's now".
    pub event_time: Option<Timestamp>,
    pub meeting_id: MeetingId,
    /// The image used; `None` when the record carries none.
    pub image: Option<Image>,
    /// Instance-id attributes of both images.
    pub instance_ids: Vec<SeenInstance>,
}

names! {
    /// The operator commands.
    pub CommandKind ("command") {
        Terminate = "terminate",
        Schedule = "schedule",
        Extend = "extend",
        Hold = "hold",
        Release = "release",
    }
}

/// An operator's command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `spindown terminate ID` → `Terminated(MANUAL)`.
    Terminate,
    /// `spindown schedule ID …`: register or update a meeting without a stream
    /// (an INSERT-like image).
    Schedule { id: MeetingId, meet_time: Timestamp, instances: Vec<SeenInstance>, duration: Option<Span> },
    /// `spindown extend ID --until T | --by DUR`: the end-of-life timer at
    /// `T` (or its current due `+ DUR`), never earlier.
    Extend(Extend),
    /// `spindown hold ID --until T`: until `T` no timer ends the meeting.
    Hold { until: Timestamp },
    /// `spindown release ID`: the hold ends now.
    Release,
}

/// How far an extend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    Until(Timestamp),
    By(Span),
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Terminate => CommandKind::Terminate,
            Command::Schedule { .. } => CommandKind::Schedule,
            Command::Extend(_) => CommandKind::Extend,
            Command::Hold { .. } => CommandKind::Hold,
            Command::Release => CommandKind::Release,
        }
    }
}

/// One input to a meeting's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Record(Change),
    Timer { kind: TimerKind, due: Timestamp },
    Command(Command),
}

/// An input the machine cannot apply; the engine dead-letters records that get one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejection {
    #[error("new meeting {0} has neither meet_time nor created_at")]
    NoStart(MeetingId),
    #[error("no such meeting")]
    UnknownMeeting,
    /// An operator command the meeting cannot take (it has ended; a time
    /// out of bounds; a release without a hold); nothing changed.
    #[error("{0}")]
    Refused(String),
}

impl fmt::Display for SeenInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} from {}", self.value, self.source)
    }
}
