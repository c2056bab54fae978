//! UTF-8 checked as it arrives, so that a text message fails at its first invalid
//! byte rather than at its end, whatever the frames and reads it is split into.

/// The state between pieces: the bytes of a character not yet complete.
#[derive(Default, Debug)]
pub struct Utf8Stream {
    pending: [u8; 4],
    len: usize,
}

impl Utf8Stream {
    /// Checks the next piece. An error means no continuation can make it valid.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), ()> {
        while self.len > 0 {
            // complete the character left over from the previous piece
            let Some((&b, rest)) = data.split_first() else {
                return Ok(());
            };
            self.pending[self.len] = b;
            self.len += 1;
            data = rest;
            match std::str::from_utf8(&self.pending[..self.len]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_some() => return Err(()),
                Err(_) if self.len == 4 => return Err(()),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(()),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.len = tail.len();
                Ok(())
            }
        }
    }

    /// Whether the text ended on a character boundary.
    pub fn complete(&self) -> bool {
        self.len == 0
    }

    pub fn reset(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(data: &[u8]) -> (bool, bool) {
        // the verdict must be the same at every split into two and into single bytes
        let whole = {
            let mut s = Utf8Stream::default();
            s.push(data).is_ok() && s.complete()
        };
        for cut in 0..=data.len() {
            let mut s = Utf8Stream::default();
            let ok = s.push(&data[..cut]).is_ok() && s.push(&data[cut..]).is_ok() && s.complete();
            assert_eq!(ok, whole, "{data:?} cut at {cut}");
        }
        let mut s = Utf8Stream::default();
        let bytewise = data.iter().all(|b| s.push(&[*b]).is_ok()) && s.complete();
        assert_eq!(bytewise, whole);
        (whole, std::str::from_utf8(data).is_ok())
    }

    #[test]
    fn agrees_with_std_at_every_split() {
        let cases: &[&[u8]] = &[
            b"",
            b"hello",
            "κόσμε".as_bytes(),
            "𝄞 music".as_bytes(),
            &[
                0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xf4, 0x90,
            ],
            &[0xed, 0xa0, 0x80],
            &[0xc0, 0x80],
            &[0xf8, 0x88, 0x80, 0x80, 0x80],
            &[0xe0, 0x80],
            &[0xf4, 0x8f, 0xbf, 0xbf],
            &[0xf0, 0x9f, 0x98],
        ];
        for case in cases {
            let (stream, std) = check_split(case);
            assert_eq!(stream, std, "{case:?}");
        }
    }

    #[test]
    fn fails_at_the_first_bad_byte() {
        let mut s = Utf8Stream::default();
        assert!(s.push("κόσμε".as_bytes()).is_ok());
        assert!(s.push(&[0xce]).is_ok()); // could still be valid
        assert!(s.push(&[0x41]).is_err()); // cannot
        let mut s = Utf8Stream::default();
        assert!(s.push(&[0xf4, 0x90]).is_err()); // past U+10FFFF: known at once
    }
}
