//! Direct uploads through a Session: the bucket a folder of the user's view
//! lies on (if its connector takes direct uploads), and publishing a staged
//! object under a name in that view. Both need `write` and stay inside the
//! home, like any upload; the link service writes the one audit row.

use super::Session;
use crate::error::Result;
use crate::policy::Op;
use crate::vfs::{DirectPlace, VPath};

impl Session {
    /// The bucket uploads into `folder` can go straight to; `None` when its
    /// connector takes no direct uploads.
    pub async fn direct_place(&self, folder: &VPath) -> Result<Option<DirectPlace>> {
        self.allow(Op::Write, "upload", folder).await?;
        self.vfs
            .direct_place(&self.full(folder))
            .map_err(|e| self.hide_home(e))
    }

    /// Publishes the staged object of direct upload `key` (`size` bytes) at `target`.
    pub async fn direct_publish(
        &self,
        place: &DirectPlace,
        key: &str,
        target: &VPath,
        size: u64,
    ) -> Result<()> {
        self.allow(Op::Write, "upload", target).await?;
        self.vfs
            .direct_publish(place, key, &self.full(target), size)
            .await
            .map_err(|e| self.hide_home(e))
    }
}
