//! A connection's queue of outgoing frames. The first frame is held inline, so the usual
//! case — one frame queued, then flushed — allocates nothing; a ring is allocated only while
//! two or more frames wait, and released when the queue empties, so an idle connection
//! holds no buffer.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Default)]
pub struct FrameQueue {
    head: Option<Bytes>,
    /// Frames after `head`; None whenever `head` is `None`. Boxed: 8 bytes in every
    /// connection's record instead of 32, for a ring most connections never have (the
    /// extra allocation clippy warns of is the point).
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Bytes>>>,
}

impl FrameQueue {
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn push_back(&mut self, frame: Bytes) {
        if self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.rest.get_or_insert_default().push_back(frame);
        }
    }

    pub fn front(&self) -> Option<&Bytes> {
        self.head.as_ref()
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        let first = self.head.take();
        self.head = self.rest.as_mut().and_then(|r| r.pop_front());
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
            .chain(self.rest.iter().flat_map(|r| r.iter()))
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
}
