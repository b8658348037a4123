//! A connection's queue of outgoing frames. The first frame is held inline, so the usual
//! case — one frame queued, then flushed — allocates nothing; a ring is allocated only while
//! two or more frames wait, and released when the queue empties, so an idle connection
//! holds no buffer. Frames of conflating channels carry a tag, so that a newer publication
//! can replace the queued ones of its channel.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Default)]
pub struct FrameQueue {
    head: Option<Bytes>,
    /// Frames after `head`, each with its conflation tag (0: none); None whenever `head`
    /// is `None`. Boxed: 8 bytes in every connection's record instead of 32, for a ring
    /// most connections never have (the extra allocation clippy warns of is the point).
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<(Bytes, u64)>>>,
}

impl FrameQueue {
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn push_back(&mut self, frame: Bytes) {
        self.push_back_tagged(frame, 0);
    }

    /// Queues a frame that a newer one with the same `tag` may replace
    /// (`remove_tagged`): a publication of a conflating channel.
    pub fn push_back_tagged(&mut self, frame: Bytes, tag: u64) {
        if self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.rest.get_or_insert_default().push_back((frame, tag));
        }
    }

    /// Drops the queued frames with `tag` (never the first, which may be partly written):
    /// how many, and their bytes.
    pub fn remove_tagged(&mut self, tag: u64) -> (usize, usize) {
        let Some(rest) = self.rest.as_mut() else {
            return (0, 0);
        };
        let (before, mut bytes) = (rest.len(), 0);
        rest.retain(|(frame, t)| {
            let keep = *t != tag;
            if !keep {
                bytes += frame.len();
            }
            keep
        });
        (before - rest.len(), bytes)
    }

    pub fn front(&self) -> Option<&Bytes> {
        self.head.as_ref()
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let first = self.head.take();
        self.head = self
            .rest
            .as_mut()
            .and_then(|r| r.pop_front())
            .map(|(f, _)| f);
        if self.head.is_none() {
            self.rest = None;
        }
        first
    }

    pub fn clear(&mut self) {
        self.head = None;
        self.rest = None;
    }

    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.head
            .iter()
            .chain(self.rest.iter().flat_map(|r| r.iter().map(|(f, _)| f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_releases_its_ring() {
        let mut q = FrameQueue::default();
        assert!(q.is_empty());
        for i in 0..5u8 {
            q.push_back(Bytes::from(vec![i]));
        }
        assert_eq!(
            q.iter().map(|b| b[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        for i in 0..5u8 {
            assert_eq!(q.front().unwrap()[0], i);
            assert_eq!(q.pop_front().unwrap()[0], i);
        }
        assert!(q.is_empty());
        assert!(q.rest.is_none());
        q.push_back(Bytes::from_static(b"x"));
        assert!(q.rest.is_none(), "one frame needs no ring");
    }

    #[test]
    fn newer_frames_replace_tagged_ones_but_never_the_first() {
        let mut q = FrameQueue::default();
        q.push_back_tagged(Bytes::from_static(b"a1"), 7);
        q.push_back_tagged(Bytes::from_static(b"b1"), 8);
        q.push_back_tagged(Bytes::from_static(b"a2"), 7);
        q.push_back(Bytes::from_static(b"x"));
        q.push_back_tagged(Bytes::from_static(b"a3"), 7);
        assert_eq!(q.remove_tagged(7), (2, 4));
        q.push_back_tagged(Bytes::from_static(b"a4"), 7);
        let left: Vec<&[u8]> = q.iter().map(|b| &b[..]).collect();
        assert_eq!(left, vec![&b"a1"[..], b"b1", b"x", b"a4"]);
        assert_eq!(q.remove_tagged(9), (0, 0));
    }
}
