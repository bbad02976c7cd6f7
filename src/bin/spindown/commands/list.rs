//! `spindown list`: meetings in id order, streamed.

use std::io::Write;

use anyhow::Result;
use spindown::inspect::{for_each_meeting, for_each_meeting_starting, MeetingView};
use spindown::meeting::MeetingFilter;
use spindown::time::Timestamp;

use crate::cli::{Cli, ListArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &ListArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let filter = MeetingFilter { state: args.state, reason: args.reason, after: None, limit: args.limit };
    let mut out = output::stdout();
    let mut rows = Vec::new();
    let each = |m: &spindown::meeting::StoredMeeting| {
        if args.json {
            serde_json::to_writer(&mut out, &MeetingView::from(&m.meeting))?;
            out.write_all(b"\n")?;
        } else {
            rows.push(render::meeting_row(&m.meeting));
        }
        Ok::<(), anyhow::Error>(())
    };
    let result = if args.starts_from.is_some() || args.starts_until.is_some() {
        let from = args.starts_from.unwrap_or(Timestamp::EPOCH);
        let until = args.starts_until.unwrap_or(Timestamp::from_micros(253_402_300_799_999_999)); // 9999-12-31T23:59:59.999999Z
        for_each_meeting_starting(store.as_ref(), (from, until), &filter, each).await
    } else {
        for_each_meeting(store.as_ref(), &filter, each).await
    };
    let result = result.and_then(|_| {
        if !args.json {
            out.write_all(render::table(&render::MEETING_HEADER, &rows).as_bytes())?;
        }
        Ok(())
    });
    output::finish(result, out)
}
