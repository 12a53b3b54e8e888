//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by load balancers (HAProxy,
//! AWS NLB) in front of ingest: parsed sans I/O from the first bytes of a connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 header is at most 107 bytes.
const V1_MAX: usize = 107;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// The header is complete: the client's address (None for `UNKNOWN`/`LOCAL`), and how
    /// many bytes it took.
    Done {
        client: Option<SocketAddr>,
        len: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PROXY protocol header: {0}")]
pub struct ProxyError(&'static str);

impl ProxyError {
    /// The client sent no complete header within the deadline.
    pub const TIMEOUT: ProxyError = ProxyError("no PROXY header in time");
}

pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < 12 {
        let v1 = b"PROXY ".starts_with(&buf[..buf.len().min(6)]);
        let v2 = V2_SIGNATURE.starts_with(buf);
        return if v1 || v2 {
            Ok(Parsed::Incomplete)
        } else {
            Err(ProxyError("no PROXY header"))
        };
    }
    if buf.starts_with(V2_SIGNATURE) {
        return parse_v2(buf);
    }
    if buf.starts_with(b"PROXY ") {
        return parse_v1(buf);
    }
    Err(ProxyError("no PROXY header"))
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let Some(end) = buf.windows(2).take(V1_MAX).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyError("v1 header too long"))
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError("v1 header not ASCII"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let client = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", proto @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src
                .parse()
                .map_err(|_| ProxyError("bad v1 source address"))?;
            if (*proto == "TCP4") != ip.is_ipv4() {
                return Err(ProxyError("v1 address family mismatch"));
            }
            let port: u16 = sport
                .parse()
                .map_err(|_| ProxyError("bad v1 source port"))?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyError("malformed v1 header")),
    };
    Ok(Parsed::Done {
        client,
        len: end + 2,
    })
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyError> {
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("unsupported v2 version"));
    }
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if buf.len() < total {
        return Ok(Parsed::Incomplete);
    }
    let body = &buf[16..total];
    let client = match (ver_cmd & 0x0f, fam >> 4) {
        (0x0, _) => None, // LOCAL: health checks from the balancer itself
        (0x1, 0x1) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        (0x1, 0x2) if body.len() >= 36 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&body[..16]);
            Some(SocketAddr::new(
                Ipv6Addr::from(o).into(),
                u16::from_be_bytes([body[32], body[33]]),
            ))
        }
        (0x1, 0x0) => None,
        (0x1, _) => return Err(ProxyError("unsupported or short v2 address block")),
        _ => return Err(ProxyError("unsupported v2 command")),
    };
    Ok(Parsed::Done { client, len: total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let h = b"PROXY TCP4 203.0.113.9 10.0.0.1 5555 25\r\nEHLO x\r\n";
        assert_eq!(
            parse(h),
            Ok(Parsed::Done {
                client: Some("203.0.113.9:5555".parse().unwrap()),
                len: 41
            })
        );
        assert_eq!(parse(b"PROXY TCP4 203.0.113.9"), Ok(Parsed::Incomplete));
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n").unwrap(),
            Parsed::Done {
                client: None,
                len: 15
            }
        );
        assert!(parse(b"PROXY TCP6 203.0.113.9 10.0.0.1 1 2\r\n").is_err());
        assert!(parse(b"EHLO example.com\r\n").is_err());
    }

    #[test]
    fn v2() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[
            0x21, 0x11, 0, 12, 198, 51, 100, 7, 10, 0, 0, 1, 0x30, 0x39, 0, 25,
        ]);
        h.extend_from_slice(b"EHLO x\r\n");
        assert_eq!(
            parse(&h),
            Ok(Parsed::Done {
                client: Some("198.51.100.7:12345".parse().unwrap()),
                len: 28
            })
        );
        assert_eq!(parse(&h[..20]), Ok(Parsed::Incomplete));
    }
}
