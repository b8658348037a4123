//! Who a connection is: the claims of its token ([`Claims`], as read), packed for the life
//! of the connection into an [`Identity`]: its strings back to back in one buffer, and where
//! each ends in another. Every open connection holds one, so its size is part of the memory
//! of an idle connection (PERFORMANCE.md): the claims as read take seven allocations
//! (≈ 350 B for a token with one channel and one publish pattern), the packed form two.

use std::fmt;

/// A token's claims, as a JWT, the token store or the connect proxy gives them.
#[derive(Debug, Clone, Default)]
pub struct Claims {
    pub user: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
    pub issued_at: Option<u64>,
    pub jti: Option<String>,
    /// Patterns of the channels it may subscribe to.
    pub channels: Vec<String>,
    /// Patterns of the channels it may publish to.
    pub publish: Vec<String>,
    /// The `info` claim, as raw JSON (`{}` when absent).
    pub info: Box<str>,
}

/// The claims of a connection's token, packed (see the module's doc).
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// Seconds since the epoch.
    pub expires_at: u64,
    pub issued_at: Option<u64>,
    /// The user, the `jti`, `info`, then the channel patterns and the publish patterns.
    text: Box<str>,
    /// Where each piece of `text` ends, in that order.
    ends: Box<[u32]>,
    /// How many of the patterns are channel patterns (the rest are publish patterns).
    channels: u32,
    has_jti: bool,
}

/// Pieces of `text` before the patterns: user, jti, info.
const FIXED: usize = 3;

impl From<Claims> for Identity {
    fn from(c: Claims) -> Identity {
        let jti = c.jti.as_deref().unwrap_or("");
        let fixed = [c.user.as_str(), jti, &c.info];
        let pieces = fixed
            .into_iter()
            .chain(c.channels.iter().map(String::as_str))
            .chain(c.publish.iter().map(String::as_str));
        let mut text = String::with_capacity(
            fixed.iter().map(|s| s.len()).sum::<usize>()
                + c.channels
                    .iter()
                    .chain(&c.publish)
                    .map(String::len)
                    .sum::<usize>(),
        );
        let mut ends = Vec::with_capacity(FIXED + c.channels.len() + c.publish.len());
        for piece in pieces {
            text.push_str(piece);
            // A token's claims are bounded by the size of an HTTP head or a backend's answer,
            // far below 4 GiB.
            ends.push(u32::try_from(text.len()).expect("claims under 4 GiB"));
        }
        Identity {
            expires_at: c.expires_at,
            issued_at: c.issued_at,
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            channels: c.channels.len() as u32,
            has_jti: c.jti.is_some(),
        }
    }
}

impl Identity {
    /// Piece `i` of `text`.
    fn piece(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn pieces(&self, from: usize, to: usize) -> impl ExactSizeIterator<Item = &str> + Clone {
        (from..to).map(|i| self.piece(i))
    }

    pub fn user(&self) -> &str {
        self.piece(0)
    }

    pub fn jti(&self) -> Option<&str> {
        self.has_jti.then(|| self.piece(1))
    }

    /// The `info` claim, as raw JSON (`{}` when absent).
    pub fn info(&self) -> &str {
        self.piece(2)
    }

    /// Patterns of the channels it may subscribe to.
    pub fn channels(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.pieces(FIXED, FIXED + self.channels as usize)
    }

    /// Patterns of the channels it may publish to.
    pub fn publish(&self) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.pieces(FIXED + self.channels as usize, self.ends.len())
    }

    /// The claims, unpacked.
    pub fn claims(&self) -> Claims {
        Claims {
            user: self.user().into(),
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            jti: self.jti().map(Into::into),
            channels: self.channels().map(Into::into).collect(),
            publish: self.publish().map(Into::into).collect(),
            info: self.info().into(),
        }
    }
}

impl Default for Identity {
    fn default() -> Identity {
        Claims::default().into()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user())
            .field("expires_at", &self.expires_at)
            .field("issued_at", &self.issued_at)
            .field("jti", &self.jti())
            .field("channels", &self.channels().collect::<Vec<_>>())
            .field("publish", &self.publish().collect::<Vec<_>>())
            .field("info", &self.info())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_every_claim() {
        let claims = Claims {
            user: "alice".into(),
            expires_at: 99,
            issued_at: Some(7),
            jti: Some(String::new()),
            channels: vec!["table:*".into(), "".into(), "lobby".into()],
            publish: vec!["chat:1".into()],
            info: r#"{"level":3}"#.into(),
        };
        let id = Identity::from(claims.clone());
        assert_eq!(id.user(), "alice");
        assert_eq!(id.jti(), Some(""));
        assert_eq!(id.info(), r#"{"level":3}"#);
        assert_eq!(id.channels().collect::<Vec<_>>(), ["table:*", "", "lobby"]);
        assert_eq!(id.publish().collect::<Vec<_>>(), ["chat:1"]);
        assert_eq!((id.expires_at, id.issued_at), (99, Some(7)));
        let back = id.claims();
        assert_eq!(
            (back.user, back.jti, back.channels),
            (claims.user, claims.jti, claims.channels)
        );
    }

    #[test]
    fn no_jti_and_no_patterns() {
        let id = Identity::from(Claims {
            user: "bob".into(),
            info: "{}".into(),
            ..Claims::default()
        });
        assert_eq!((id.user(), id.jti(), id.info()), ("bob", None, "{}"));
        assert_eq!(id.channels().len() + id.publish().len(), 0);
    }
}
