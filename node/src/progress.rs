//! Progress display for `submit` and `demo`: an indicatif bar of shards proved when stderr is a
//! terminal, plain lines otherwise (logs, CI).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::client::Progress;

/// Shows a job's progress.
pub struct JobProgress {
    label: String,
    bar: Option<ProgressBar>,
}

impl JobProgress {
    /// A display for the job called `label`.
    pub fn new(label: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1);
            bar.set_style(
                ProgressStyle::with_template("  [{prefix}] {bar:30.cyan/blue} {pos}/{len} · {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        Self {
            label: label.into(),
            bar,
        }
    }

    /// Shows one update.
    pub fn update(&self, p: Progress) {
        let text = match &p {
            Progress::Accepted(job) => format!("accepted as job {job}"),
            Progress::Status { text, .. } => text.clone(),
            Progress::Verifying => "settlement received; verifying every proof locally".into(),
            Progress::Committing { shards } => {
                format!("committing W: the owner's setup of {shards} shards")
            }
            Progress::Uploading {
                sent,
                missing,
                total,
            } => format!(
                "uploading W: {sent}/{missing} chunks sent ({} of {total} were already there)",
                total.saturating_sub(*missing)
            ),
            Progress::Registered(model) => format!("model {model} registered"),
        };
        // Without a terminal, an upload prints about ten lines, not one per chunk.
        if let Progress::Uploading { sent, missing, .. } = p {
            let step = (missing / 10).max(1);
            if self.bar.is_none() && sent % step != 0 && sent != missing {
                return;
            }
        }
        match &self.bar {
            Some(bar) => {
                if let Progress::Status { total, proved, .. } = p {
                    bar.set_length(u64::from(total.max(1)));
                    bar.set_position(u64::from(proved));
                }
                if let Progress::Uploading { sent, missing, .. } = p {
                    bar.set_length(u64::from(missing.max(1)));
                    bar.set_position(u64::from(sent));
                }
                bar.set_message(text);
            }
            None => eprintln!("  [{}] {text}", self.label),
        }
    }

    /// Removes the bar, leaving a final line.
    pub fn finish(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_string()),
            None => eprintln!("  [{}] {line}", self.label),
        }
    }
}
