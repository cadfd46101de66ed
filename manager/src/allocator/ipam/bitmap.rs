//! A fixed-length bitset over `u64` words that grows its storage lazily.
//!
//! Bits past the stored words are clear, so a fresh /8 costs nothing until its
//! addresses are used; serial allocation fills it from the front.

/// `len` bits, `true` meaning used.
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: u64,
    ones: u64,
}

const WORD: u64 = 64;

/// Equal when the same bits are set, however much storage each has grown.
impl PartialEq for Bitmap {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.ones == other.ones && self.iter_ones().eq(other.iter_ones())
    }
}

impl Eq for Bitmap {}

impl Bitmap {
    pub(crate) fn new(len: u64) -> Self {
        Bitmap {
            words: Vec::new(),
            len,
            ones: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Number of set bits.
    pub(crate) fn ones(&self) -> u64 {
        self.ones
    }

    pub(crate) fn is_full(&self) -> bool {
        self.ones >= self.len
    }

    pub(crate) fn get(&self, i: u64) -> bool {
        let (w, b) = split(i);
        self.words.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    /// Sets bit `i` (< len); returns whether it was clear.
    pub(crate) fn set(&mut self, i: u64) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        let (w, b) = split(i);
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        if let Some(word) = self.words.get_mut(w) {
            *word |= 1 << b;
            self.ones += 1;
            return true;
        }
        false
    }

    /// Clears bit `i`; returns whether it was set.
    pub(crate) fn clear(&mut self, i: u64) -> bool {
        let (w, b) = split(i);
        match self.words.get_mut(w) {
            Some(word) if *word & (1 << b) != 0 => {
                *word &= !(1 << b);
                self.ones -= 1;
                true
            }
            _ => false,
        }
    }

    /// The first clear bit at or after `start`, wrapping around to 0.
    pub(crate) fn first_clear_from(&self, start: u64) -> Option<u64> {
        let start = if start < self.len { start } else { 0 };
        self.first_clear_in(start, self.len)
            .or_else(|| self.first_clear_in(0, start))
    }

    /// The first clear bit in `from..to`, skipping full words.
    pub(crate) fn first_clear_in(&self, from: u64, to: u64) -> Option<u64> {
        let mut i = from;
        while i < to {
            let (w, b) = split(i);
            let Some(&word) = self.words.get(w) else {
                // Past the stored words every bit is clear.
                return Some(i);
            };
            let masked = word | ((1u64 << b) - 1);
            if masked != u64::MAX {
                let found = (w as u64) * WORD + u64::from(masked.trailing_ones());
                return (found < to).then_some(found);
            }
            i = (w as u64 + 1) * WORD;
        }
        None
    }

    /// Indexes of the set bits, in order.
    pub(crate) fn iter_ones(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            (0..WORD)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w as u64 * WORD + b)
        })
    }
}

fn split(i: u64) -> (usize, u32) {
    ((i / WORD) as usize, (i % WORD) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_clear_and_count() {
        let mut b = Bitmap::new(130);
        assert!(b.set(0));
        assert!(!b.set(0), "setting twice is a no-op");
        assert!(b.set(129));
        assert!(!b.set(130), "out of range is refused");
        assert_eq!(b.ones(), 2);
        assert!(b.clear(129));
        assert!(!b.clear(129));
        assert!(!b.clear(5000), "clearing past the storage is a no-op");
        assert_eq!(b.ones(), 1);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn first_clear_skips_words_and_wraps() {
        let mut b = Bitmap::new(200);
        for i in 0..150 {
            b.set(i);
        }
        assert_eq!(b.first_clear_from(0), Some(150));
        assert_eq!(b.first_clear_from(170), Some(170));
        for i in 150..200 {
            b.set(i);
        }
        assert!(b.is_full());
        assert_eq!(b.first_clear_from(10), None);
        b.clear(3);
        assert_eq!(b.first_clear_from(10), Some(3), "wraps to the start");
        assert_eq!(b.first_clear_from(500), Some(3), "start past the end wraps");
    }

    #[test]
    fn tail_word_does_not_report_bits_past_len() {
        let mut b = Bitmap::new(70);
        for i in 0..70 {
            b.set(i);
        }
        assert_eq!(b.first_clear_from(65), None);
    }
}
