//! Multipart uploads whose part size grows with the transfer: an upload of
//! unknown size starts with the service's minimum part (S3: 5 MiB), so small
//! files stay cheap in memory, and doubles the part every
//! [`DOUBLE_EVERY`] parts up to [`PART_CAP`], so a large one needs few
//! requests and stays far under S3's 10,000-part limit (10,000 parts reach
//! more than 1 TiB, see the tests).
//!
//! Every growth is paid for in the memory budget (`crate::budget`) first: the
//! extra bytes of the part being filled and of each part in flight. When the
//! budget has no room the part size stays where it is (never waiting: a
//! writer already holds a reservation, and holders must not wait for more).
//! At the 5 MiB minimum, 10,000 parts still hold 48 GiB.
//!
//! OpenDAL's writer is built without a `chunk` here: each buffer handed to it
//! of at least the service's minimum becomes exactly one part.

use bytes::Bytes;
use wharf_connectors::opendal;

use crate::budget::{Budget, Reservation};
use crate::error::Result;

/// Parts of one size before the size doubles.
pub const DOUBLE_EVERY: u32 = 4;

/// Largest part: with the ramp from 5 MiB, 10,000 parts cover more than 1 TiB.
pub const PART_CAP: usize = 128 * 1024 * 1024;

/// The part sizes of one upload: `start`, doubled every [`DOUBLE_EVERY`]
/// parts, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSchedule {
    pub start: usize,
    pub cap: usize,
}

impl PartSchedule {
    pub fn new(start: usize, cap: usize) -> PartSchedule {
        PartSchedule {
            start,
            cap: cap.max(start),
        }
    }

    /// The size of part `index` (0-based).
    pub fn size(&self, index: u32) -> usize {
        let mut size = self.start;
        for _ in 0..index / DOUBLE_EVERY {
            if size >= self.cap {
                break;
            }
            size = size.saturating_mul(2);
        }
        size.min(self.cap)
    }
}

/// An OpenDAL multipart writer fed whole parts of the scheduled sizes.
pub struct PartWriter {
    writer: opendal::Writer,
    schedule: PartSchedule,
    budget: Budget,
    /// Buffers of this size are held at once: the one being filled and those
    /// in flight (OpenDAL's queued part included).
    held_parts: usize,
    /// The size the budget has paid for so far.
    paid: usize,
    /// Reservations for each growth, given back when the upload ends.
    extra: Vec<Reservation>,
    index: u32,
    target: usize,
    filled: Vec<Bytes>,
    filled_len: usize,
}

impl PartWriter {
    /// The caller has reserved `held_parts` buffers of `schedule.start`.
    pub fn new(
        writer: opendal::Writer,
        schedule: PartSchedule,
        budget: Budget,
        held_parts: usize,
    ) -> PartWriter {
        PartWriter {
            writer,
            schedule,
            budget,
            held_parts: held_parts.max(1),
            paid: schedule.start,
            extra: Vec::new(),
            index: 0,
            target: schedule.start,
            filled: Vec::new(),
            filled_len: 0,
        }
    }

    pub async fn write(&mut self, mut data: Bytes) -> Result<()> {
        while !data.is_empty() {
            let room = self.target - self.filled_len;
            let take = data.split_to(room.min(data.len()));
            self.filled_len += take.len();
            self.filled.push(take);
            if self.filled_len == self.target {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self) -> Result<()> {
        let part: Vec<Bytes> = std::mem::take(&mut self.filled);
        self.filled_len = 0;
        self.writer.write(opendal::Buffer::from(part)).await?;
        self.index += 1;
        self.grow();
        Ok(())
    }

    /// Moves to the next part's size if the budget pays for it.
    fn grow(&mut self) {
        let next = self.schedule.size(self.index);
        if next <= self.paid {
            self.target = next.max(self.target);
            return;
        }
        let cost = (next - self.paid) * self.held_parts;
        // A reservation cut to a smaller budget is given back at once.
        if let Some(r) = self.budget.try_reserve(cost).filter(|r| r.bytes() >= cost) {
            self.extra.push(r);
            self.paid = next;
            self.target = next;
        }
    }

    pub async fn close(mut self) -> Result<()> {
        let rest: Vec<Bytes> = std::mem::take(&mut self.filled);
        let result = async {
            if !rest.is_empty() {
                self.writer.write(opendal::Buffer::from(rest)).await?;
            }
            self.writer.close().await?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = self.writer.abort().await;
        }
        result
    }

    pub async fn abort(mut self) -> Result<()> {
        Ok(self.writer.abort().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn parts_start_small_double_and_stop_at_the_cap() {
        let s = PartSchedule::new(5 * MIB, PART_CAP);
        let sizes: Vec<usize> = (0..12).map(|i| s.size(i) / MIB).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 10, 10, 10, 10, 20, 20, 20, 20]);
        assert_eq!(s.size(9_999), PART_CAP);
        assert_eq!(s.size(u32::MAX), PART_CAP);
    }

    #[test]
    fn ten_thousand_parts_cover_a_tebibyte() {
        let s = PartSchedule::new(5 * MIB, PART_CAP);
        let total: u64 = (0..10_000).map(|i| s.size(i) as u64).sum();
        assert!(total >= 1 << 40, "{total}");
        // A 10 GiB upload of unknown size needs about a hundred parts.
        let mut sent = 0u64;
        let mut parts = 0;
        while sent < 10 << 30 {
            sent += s.size(parts) as u64;
            parts += 1;
        }
        assert!(parts < 200, "{parts}");
    }

    #[test]
    fn a_small_start_still_grows_to_the_cap() {
        let s = PartSchedule::new(256 * 1024, PART_CAP);
        assert_eq!(s.size(0), 256 * 1024);
        assert_eq!(s.size(4), 512 * 1024);
        assert_eq!(s.size(4 * 20), PART_CAP);
    }
}
