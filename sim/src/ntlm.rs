//! The EWS fake's NTLM acceptor, written independently of the product (the simulator never links
//! it): like IIS, it authenticates a connection. A 401 offers `Negotiate` and `NTLM` (or only
//! `Negotiate`); a NEGOTIATE gets a CHALLENGE with a timestamp; an AUTHENTICATE must carry an
//! NTLMv2 response that matches the configured password, the challenge's timestamp, a MIC over
//! all three messages and an (all-zero, as this server is plain HTTP) channel binding. The
//! request that carries a good AUTHENTICATE is served, and so is every later request on the
//! same connection without `Authorization`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use crate::server::{HttpReply, HttpRequest};

type HmacMd5 = hmac::Hmac<md5::Md5>;

const UNICODE: u32 = 0x1;
const SIGN: u32 = 0x10;
const SEAL: u32 = 0x20;
const KEY_EXCH: u32 = 0x4000_0000;
/// The flags of the CHALLENGE: what Exchange's IIS answers to a client asking for NTLMv2.
const CHALLENGE_FLAGS: u32 = 0xe28a_8215;

#[derive(Debug)]
enum Conn {
    Challenged {
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
    },
    Authenticated,
}

/// Per-connection NTLM state, keyed by the client's address and port.
#[derive(Debug, Default)]
pub struct Connections {
    conns: Mutex<HashMap<String, Conn>>,
    logins: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

/// What the acceptor decided about a request.
pub enum Outcome {
    /// Serve the request.
    Serve,
    /// Answer with this (a 401).
    Reply(HttpReply),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn av(id: u16, value: &[u8]) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn filetime_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

fn challenge_message() -> Vec<u8> {
    let mut nonce = std::collections::hash_map::RandomState::new().build_hasher();
    nonce.write_u64(filetime_now());
    let server_challenge = nonce.finish().to_le_bytes();
    let mut info = Vec::new();
    info.extend(av(2, &utf16("EXAMPLE")));
    info.extend(av(1, &utf16("MAIL")));
    info.extend(av(4, &utf16("example.com")));
    info.extend(av(3, &utf16("mail.example.com")));
    info.extend(av(7, &filetime_now().to_le_bytes()));
    info.extend(av(0, &[]));
    let target = utf16("EXAMPLE");
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target.len() as u16).to_le_bytes());
    m.extend_from_slice(&56u32.to_le_bytes());
    m.extend_from_slice(&CHALLENGE_FLAGS.to_le_bytes());
    m.extend_from_slice(&server_challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&((56 + target.len()) as u32).to_le_bytes());
    m.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]);
    m.extend_from_slice(&target);
    m.extend_from_slice(&info);
    m
}

fn field(msg: &[u8], at: usize) -> Result<&[u8], String> {
    let head = msg.get(at..at + 8).ok_or("AUTHENTICATE truncated")?;
    let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let off = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    msg.get(off..off + len)
        .ok_or_else(|| format!("field at {at} out of bounds"))
}

fn av_pairs(mut info: &[u8]) -> Result<HashMap<u16, Vec<u8>>, String> {
    let mut out = HashMap::new();
    loop {
        let head = info.get(..4).ok_or("target info without MsvAvEOL")?;
        let id = u16::from_le_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
        if id == 0 {
            return Ok(out);
        }
        let value = info.get(4..4 + len).ok_or("AV pair out of bounds")?;
        out.insert(id, value.to_vec());
        info = &info[4 + len..];
    }
}

/// Checks an AUTHENTICATE against the configured account; returns the principal.
fn verify(
    username: &str,
    password: &str,
    negotiate: &[u8],
    challenge: &[u8],
    auth: &[u8],
) -> Result<String, String> {
    if auth.get(..12) != Some(b"NTLMSSP\0\x03\0\0\0".as_slice()) {
        return Err("not an AUTHENTICATE message".into());
    }
    let flags = u32::from_le_bytes(
        auth.get(60..64)
            .ok_or("no flags")?
            .try_into()
            .unwrap_or_default(),
    );
    if flags & UNICODE == 0 {
        return Err("not Unicode".into());
    }
    if flags & KEY_EXCH != 0 && flags & (SIGN | SEAL) != 0 {
        return Err("key exchange with signing or sealing, which this fake does not do".into());
    }
    let (domain, user) = (from_utf16(field(auth, 28)?), from_utf16(field(auth, 36)?));
    let (want_domain, want_user) = username.split_once('\\').unwrap_or(("", username));
    if !domain.eq_ignore_ascii_case(want_domain) || !user.eq_ignore_ascii_case(want_user) {
        return Err(format!("unknown user {domain}\\{user}"));
    }
    let nt = field(auth, 20)?;
    if nt.len() <= 24 {
        return Err("an NTLMv1 response".into());
    }
    if field(auth, 12)? != [0u8; 24] {
        return Err("an LM response although the challenge had a timestamp".into());
    }
    let (proof, temp) = nt.split_at(16);
    if temp.len() < 32 || temp[..2] != [1, 1] {
        return Err("not an NTLMv2 client challenge".into());
    }
    let challenge_info = av_pairs(&challenge[(56 + 14)..])?;
    if challenge_info.get(&7).map(Vec::as_slice) != Some(&temp[8..16]) {
        return Err("the timestamp is not the challenge's".into());
    }
    let info = av_pairs(&temp[28..])?;
    let av_flags = info
        .get(&6)
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok());
    if av_flags.is_none_or(|f| u32::from_le_bytes(f) & 2 == 0) {
        return Err("no MIC announced in MsvAvFlags".into());
    }
    if info.get(&10).map(Vec::as_slice) != Some(&[0u8; 16][..]) {
        return Err("no (all-zero) channel binding for plain HTTP".into());
    }
    let nt_hash: [u8; 16] = {
        use md4::Digest;
        md4::Md4::digest(utf16(password)).into()
    };
    let name = utf16(&format!("{}{}", user.to_uppercase(), domain));
    let key = hmac_md5(&nt_hash, &[&name]);
    if hmac_md5(&key, &[&challenge[24..32], temp]) != proof {
        return Err(format!("wrong password for {domain}\\{user}"));
    }
    let session_key = hmac_md5(&key, &[proof]);
    let mic = auth.get(72..88).ok_or("no MIC")?;
    let mut zeroed = auth.to_vec();
    zeroed[72..88].fill(0);
    if hmac_md5(&session_key, &[negotiate, challenge, &zeroed]) != mic {
        return Err("wrong MIC".into());
    }
    Ok(if domain.is_empty() {
        user
    } else {
        format!("{domain}\\{user}")
    })
}

impl Connections {
    /// Handshakes that ended in an authenticated connection.
    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    /// Why AUTHENTICATE messages were refused, in order.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.failures).clone()
    }

    fn offer(schemes: &[&str]) -> Outcome {
        let mut reply = HttpReply::empty(401);
        for s in schemes {
            reply = reply.with_header("WWW-Authenticate", s);
        }
        Outcome::Reply(reply)
    }

    /// Decides about `req` for the account `username`/`password`, offering `schemes`.
    pub fn check(
        &self,
        req: &HttpRequest,
        username: &str,
        password: &str,
        schemes: &[&str],
    ) -> Outcome {
        let mut conns = lock(&self.conns);
        let header = req.header("Authorization");
        if header.is_none() && matches!(conns.get(&req.peer), Some(Conn::Authenticated)) {
            return Outcome::Serve;
        }
        let Some((scheme, token)) = header.and_then(|h| h.split_once(' ')) else {
            return Self::offer(schemes);
        };
        let Some(scheme) = schemes.iter().find(|s| s.eq_ignore_ascii_case(scheme)) else {
            return Self::offer(schemes);
        };
        let Ok(token) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
            return Self::offer(schemes);
        };
        match token.get(8..12) {
            Some([1, 0, 0, 0]) => {
                let challenge = challenge_message();
                let value = format!(
                    "{scheme} {}",
                    base64::engine::general_purpose::STANDARD.encode(&challenge)
                );
                conns.insert(
                    req.peer.clone(),
                    Conn::Challenged {
                        negotiate: token,
                        challenge,
                    },
                );
                Outcome::Reply(HttpReply::empty(401).with_header("WWW-Authenticate", &value))
            }
            Some([3, 0, 0, 0]) => {
                let result = match conns.remove(&req.peer) {
                    Some(Conn::Challenged {
                        negotiate,
                        challenge,
                    }) => verify(username, password, &negotiate, &challenge, &token),
                    _ => Err("AUTHENTICATE without a CHALLENGE on this connection".into()),
                };
                match result {
                    Ok(_) => {
                        conns.insert(req.peer.clone(), Conn::Authenticated);
                        self.logins.fetch_add(1, Ordering::SeqCst);
                        Outcome::Serve
                    }
                    Err(why) => {
                        lock(&self.failures).push(why);
                        Self::offer(schemes)
                    }
                }
            }
            _ => Self::offer(schemes),
        }
    }
}
