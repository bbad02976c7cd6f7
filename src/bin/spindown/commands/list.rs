//! `spindown list`: meetings in id order, streamed.

use std::io::Write;

use anyhow::Result;
use spindown::inspect::{for_each_meeting, MeetingView};
use spindown::meeting::MeetingFilter;

use crate::cli::{Cli, ListArgs};
use crate::{db, output, render};

pub async fn run(cli: &Cli, args: &ListArgs) -> Result<()> {
    let store = db::open_existing(cli).await?;
    let filter = MeetingFilter { state: args.state, reason: args.reason, after: None, limit: args.limit };
    let mut out = output::stdout();
    let mut rows = Vec::new();
    let result = for_each_meeting(store.as_ref(), &filter, |m| {
        if args.json {
            serde_json::to_writer(&mut out, &MeetingView::from(&m.meeting))?;
            out.write_all(b"\n")?;
        } else {
            rows.push(render::meeting_row(&m.meeting));
        }
        Ok::<(), anyhow::Error>(())
    })
    .await;
    let result = result.and_then(|_| {
        if !args.json {
            out.write_all(render::table(&render::MEETING_HEADER, &rows).as_bytes())?;
        }
        Ok(())
    });
    output::finish(result, out)
}
