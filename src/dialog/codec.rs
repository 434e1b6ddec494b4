//! A small binary codec for the dialog stage's own spill files (cold
//! sessions, `tracker/cold.rs`): little-endian integers, length-prefixed
//! strings, written to a `Vec<u8>` and read back from a byte slice. Owns
//! only the encoding of primitives; what a record or a session writes is
//! decided next to its type. Never a format for users: the bytes live in
//! the run's temporary directory and die with the run.

/// Appends values to a buffer.
pub(crate) struct Put<'a>(pub &'a mut Vec<u8>);

impl Put<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A `u32` length, then the bytes.
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }

    /// 0, or 1 then `v`.
    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u64(x);
            }
        }
    }

    /// 0, or 1 then `v`.
    pub fn opt_i64(&mut self, v: Option<i64>) {
        self.opt_u64(v.map(|x| x as u64));
    }

    /// 0, or 1 then `v`.
    pub fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
        }
    }

    /// A socket address: family, 4 or 16 address bytes, port (and for IPv6
    /// the flow info and scope id, so that the address reads back equal).
    pub fn addr(&mut self, a: std::net::SocketAddr) {
        match a {
            std::net::SocketAddr::V4(v) => {
                self.u8(4);
                self.0.extend_from_slice(&v.ip().octets());
                self.u16(v.port());
            }
            std::net::SocketAddr::V6(v) => {
                self.u8(6);
                self.0.extend_from_slice(&v.ip().octets());
                self.u16(v.port());
                self.u32(v.flowinfo());
                self.u32(v.scope_id());
            }
        }
    }
}

/// Reads values back; `None` when the bytes end early or do not decode.
pub(crate) struct Get<'a>(pub &'a [u8]);

impl<'a> Get<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).ok()
    }

    pub fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.u64().map(Some),
            _ => None,
        }
    }

    pub fn opt_i64(&mut self) -> Option<Option<i64>> {
        self.opt_u64().map(|v| v.map(|x| x as i64))
    }

    pub fn opt_u32(&mut self) -> Option<Option<u32>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.u32().map(Some),
            _ => None,
        }
    }

    pub fn addr(&mut self) -> Option<std::net::SocketAddr> {
        use std::net::{SocketAddrV4, SocketAddrV6};
        match self.u8()? {
            4 => {
                let ip = self.take::<4>()?;
                let port = self.u16()?;
                Some(SocketAddrV4::new(ip.into(), port).into())
            }
            6 => {
                let ip = self.take::<16>()?;
                let port = self.u16()?;
                let (flow, scope) = (self.u32()?, self.u32()?);
                Some(SocketAddrV6::new(ip.into(), port, flow, scope).into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_and_short_input_is_none() {
        let mut b = Vec::new();
        let mut p = Put(&mut b);
        p.u8(7);
        p.u16(513);
        p.u32(70_000);
        p.u64(u64::MAX - 1);
        p.i64(-5);
        p.str("callid@host");
        p.opt_u64(None);
        p.opt_i64(Some(-9));
        p.opt_u32(Some(3));
        p.addr("10.0.0.1:5060".parse().unwrap());
        p.addr("[2001:db8::1]:5061".parse().unwrap());
        let mut g = Get(&b);
        assert_eq!(g.u8(), Some(7));
        assert_eq!(g.u16(), Some(513));
        assert_eq!(g.u32(), Some(70_000));
        assert_eq!(g.u64(), Some(u64::MAX - 1));
        assert_eq!(g.i64(), Some(-5));
        assert_eq!(g.str(), Some("callid@host"));
        assert_eq!(g.opt_u64(), Some(None));
        assert_eq!(g.opt_i64(), Some(Some(-9)));
        assert_eq!(g.opt_u32(), Some(Some(3)));
        assert_eq!(g.addr(), Some("10.0.0.1:5060".parse().unwrap()));
        assert_eq!(g.addr(), Some("[2001:db8::1]:5061".parse().unwrap()));
        assert!(g.0.is_empty());
        assert_eq!(Get(&b[..b.len() - 1]).u8().map(|_| ()), Some(()));
        let mut short = Get(&[3, 0, 0, 0, b'a']);
        assert_eq!(short.str(), None);
        assert_eq!(Get(&[2]).opt_u64(), None);
    }
}
