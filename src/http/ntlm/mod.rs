//! NTLMv2 ([MS-NLMP]) as pure functions over bytes: the NEGOTIATE message, a strict parser for
//! the server's CHALLENGE, and the AUTHENTICATE message with its MIC and channel binding. The
//! caller supplies everything that is random or read from a clock, so every result is a function
//! of its inputs; the I/O (headers, connections, the certificate) lives in the HTTP client.
//!
//! Only NTLMv2 is spoken: no LM or NTLMv1 response is ever computed, and a challenge without
//! target information (which an NTLMv1-only server sends) is refused.

mod cbt;

pub use cbt::{channel_bindings_hash, tls_server_end_point};

use std::fmt;

use hmac::{KeyInit, Mac};

type HmacMd5 = hmac::Hmac<md5::Md5>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub const NEGOTIATE_128: u32 = 0x2000_0000;
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// The flags this client asks for. Signing and sealing are not requested: NTLM here only
/// authenticates the HTTP connection. Nor is key exchange: an acceptor uses the exchanged key
/// only together with signing or sealing ([MS-NLMP] 3.2.5.1.2), so the exported session key
/// (which the MIC is keyed with) is the session base key.
pub const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// A CHALLENGE larger than this is refused before it is parsed; real ones are a few hundred
/// bytes, and the bound keeps a hostile server from making us copy megabytes into AUTHENTICATE.
pub const MAX_CHALLENGE: usize = 8 * 1024;

/// The longest user or domain name accepted, in UTF-16 code units (Windows allows 256 for a UPN).
const MAX_NAME_UNITS: usize = 512;

const AV_EOL: u16 = 0x0000;
const AV_FLAGS: u16 = 0x0006;
const AV_TIMESTAMP: u16 = 0x0007;
const AV_CHANNEL_BINDINGS: u16 = 0x000A;
/// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
const AV_FLAG_MIC: u32 = 0x0000_0002;

const AUTH_HEADER: usize = 64;
const VERSION_LEN: usize = 8;
const MIC_LEN: usize = 16;
const MIC_OFFSET: usize = AUTH_HEADER + VERSION_LEN;

/// What can go wrong with NTLM messages. No variant carries message bytes: every NTLM message
/// is treated as a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NtlmError {
    /// The token does not start with "NTLMSSP\0".
    NotNtlmssp,
    /// An NTLMSSP message of another type where a CHALLENGE was expected.
    WrongMessageType(u32),
    /// The message ends before a fixed field named here.
    Truncated(&'static str),
    /// A field's offset and length point outside the message.
    OutOfBounds(&'static str),
    /// The message is larger than [`MAX_CHALLENGE`].
    TooLarge(usize),
    /// The server does not speak Unicode, which no NTLMv2 server omits.
    NoUnicode,
    /// No target information: the server offers only NTLMv1, which is never used.
    NtlmV1Only,
    /// The target information list is malformed (the reason is named).
    BadTargetInfo(&'static str),
    /// A user or domain name too long for an NTLM message.
    NameTooLong,
    /// A certificate whose signature algorithm could not be read for channel binding.
    BadCertificate(&'static str),
    /// A 401 to NEGOTIATE without a challenge in the scheme that was used.
    NoChallenge(&'static str),
    /// The challenge in `WWW-Authenticate` is not base64.
    NotBase64,
    /// No random numbers for the client challenge (within the request's time).
    NoRandom,
}

impl fmt::Display for NtlmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NtlmError::NotNtlmssp => write!(f, "the server's NTLM token is not an NTLMSSP message"),
            NtlmError::WrongMessageType(t) => {
                write!(
                    f,
                    "the server sent NTLM message type {t} instead of a challenge"
                )
            }
            NtlmError::Truncated(what) => {
                write!(f, "the server's NTLM challenge is truncated (in {what})")
            }
            NtlmError::OutOfBounds(what) => {
                write!(
                    f,
                    "the server's NTLM challenge points outside itself (field {what})"
                )
            }
            NtlmError::TooLarge(n) => write!(
                f,
                "the server's NTLM challenge is {n} bytes, more than the {MAX_CHALLENGE} accepted"
            ),
            NtlmError::NoUnicode => {
                write!(f, "the server's NTLM challenge does not offer Unicode")
            }
            NtlmError::NtlmV1Only => write!(
                f,
                "the server offers only NTLMv1 (its challenge has no target information); \
                 only NTLMv2 is used"
            ),
            NtlmError::BadTargetInfo(why) => {
                write!(
                    f,
                    "the server's NTLM target information is malformed: {why}"
                )
            }
            NtlmError::NameTooLong => write!(f, "the NTLM user or domain name is too long"),
            NtlmError::BadCertificate(why) => write!(
                f,
                "cannot compute the channel binding from the server's certificate: {why}"
            ),
            NtlmError::NoChallenge(scheme) => write!(
                f,
                "the server answered the NTLM NEGOTIATE without a challenge \
                 (no \"WWW-Authenticate: {scheme} ...\")"
            ),
            NtlmError::NotBase64 => write!(f, "the server's NTLM challenge is not base64"),
            NtlmError::NoRandom => write!(
                f,
                "the kernel gave no random numbers for the NTLM client challenge in time"
            ),
        }
    }
}

impl std::error::Error for NtlmError {}

/// The NTLM identity: `DOMAIN\user` gives DomainName and UserName; anything else (a UPN such as
/// `user@example.com`) is the UserName whole with an empty DomainName, as Windows sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub domain: String,
    pub user: String,
}

impl Identity {
    pub fn parse(username: &str) -> Identity {
        match username.split_once('\\') {
            Some((domain, user)) => Identity {
                domain: domain.to_string(),
                user: user.to_string(),
            },
            None => Identity {
                domain: String::new(),
                user: username.to_string(),
            },
        }
    }
}

/// The parts of a CHALLENGE the client uses. `target_info` is the raw AV_PAIR list (ending in
/// MsvAvEOL), already checked to be well formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: Vec<u8>,
    pub timestamp: Option<u64>,
}

/// What the caller draws from randomness and the clock for one AUTHENTICATE.
#[derive(Debug, Clone)]
pub struct ClientInput {
    pub client_challenge: [u8; 8],
    /// The local time as a Windows FILETIME (100 ns since 1601), used when the challenge has no
    /// MsvAvTimestamp.
    pub now_filetime: u64,
    /// MD5 of the channel bindings (see [`channel_bindings_hash`]); `None` over plain HTTP,
    /// which sends the all-zero value Windows sends.
    pub channel_bindings: Option<[u8; 16]>,
}

/// The NTLMv2 results of section 3.3.2, before they are put into a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responses {
    pub nt_response: Vec<u8>,
    pub lm_response: Vec<u8>,
    pub session_base_key: [u8; 16],
}

/// How the AUTHENTICATE message is laid out. The product always writes a zero Version and a MIC;
/// the other forms exist so that the encoder can be checked against [MS-NLMP]'s example.
#[derive(Debug, Clone)]
pub struct Layout<'a> {
    pub flags: u32,
    pub version: [u8; 8],
    pub with_mic: bool,
    pub workstation: &'a str,
}

fn hmac_md5(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC pads a key shorter than the block with zeros, so padding it here first gives the
    // same MAC through the infallible constructor.
    let mut block = [0u8; 64];
    block[..16].copy_from_slice(key);
    let mut mac = HmacMd5::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Upper-cases like Windows does for NTOWFv2: character by character, keeping a character whose
/// upper case would be more than one character (such as "ß").
fn upcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// NTOWFv1: MD4 of the UTF-16LE password (the "NT hash", a secret like the password).
pub fn nt_hash(password: &str) -> [u8; 16] {
    use md4::Digest;
    md4::Md4::digest(utf16le(password)).into()
}

/// NTOWFv2 (ResponseKeyNT = ResponseKeyLM).
pub fn ntowfv2(nt_hash: &[u8; 16], identity: &Identity) -> [u8; 16] {
    let name = utf16le(&format!("{}{}", upcase(&identity.user), identity.domain));
    hmac_md5(nt_hash, &[&name])
}

/// The NTLMv2 and LMv2 responses and the session base key for `av_pairs` (the target
/// information the client sends back). With a server timestamp the LM response is all zeros, as
/// section 3.1.5.1.2 asks.
pub fn compute_responses(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    timestamp: u64,
    av_pairs: &[u8],
    server_sent_timestamp: bool,
) -> Responses {
    let mut temp = Vec::with_capacity(28 + av_pairs.len() + 4);
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&timestamp.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(av_pairs);
    temp.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(response_key, &[server_challenge, &temp]);
    let mut nt_response = proof.to_vec();
    nt_response.extend_from_slice(&temp);
    let lm_response = if server_sent_timestamp {
        vec![0; 24]
    } else {
        let mut lm = hmac_md5(response_key, &[server_challenge, client_challenge]).to_vec();
        lm.extend_from_slice(client_challenge);
        lm
    };
    Responses {
        nt_response,
        lm_response,
        session_base_key: hmac_md5(response_key, &[&proof]),
    }
}

/// The NEGOTIATE message: the client's flags and no domain or workstation.
pub fn negotiate() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    for _ in 0..2 {
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&32u32.to_le_bytes());
    }
    m
}

fn u16_at(b: &[u8], at: usize, what: &'static str) -> Result<u16, NtlmError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(NtlmError::Truncated(what))
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, NtlmError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(NtlmError::Truncated(what))
}

/// The bytes a security buffer (length, maximum length, offset) at `at` points to.
fn security_buffer<'a>(b: &'a [u8], at: usize, what: &'static str) -> Result<&'a [u8], NtlmError> {
    let len = usize::from(u16_at(b, at, what)?);
    let offset = u32_at(b, at + 4, what)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .and_then(|end| b.get(offset..end))
        .ok_or(NtlmError::OutOfBounds(what))
}

/// Walks an AV_PAIR list and returns its MsvAvTimestamp. The list must end in MsvAvEOL and
/// every pair must lie inside it.
fn check_target_info(info: &[u8]) -> Result<Option<u64>, NtlmError> {
    let mut at = 0;
    let mut timestamp = None;
    loop {
        let id = u16_at(info, at, "target info")
            .map_err(|_| NtlmError::BadTargetInfo("no end marker"))?;
        let len = usize::from(
            u16_at(info, at + 2, "target info")
                .map_err(|_| NtlmError::BadTargetInfo("no end marker"))?,
        );
        let value = info
            .get(at + 4..at + 4 + len)
            .ok_or(NtlmError::BadTargetInfo("a value runs past the end"))?;
        match id {
            AV_EOL if len != 0 => {
                return Err(NtlmError::BadTargetInfo("the end marker has a value"))
            }
            AV_EOL if at + 4 != info.len() => {
                return Err(NtlmError::BadTargetInfo("bytes after the end marker"))
            }
            AV_EOL => return Ok(timestamp),
            AV_TIMESTAMP => {
                let raw: [u8; 8] = value
                    .try_into()
                    .map_err(|_| NtlmError::BadTargetInfo("the timestamp is not 8 bytes"))?;
                if timestamp.replace(u64::from_le_bytes(raw)).is_some() {
                    return Err(NtlmError::BadTargetInfo("two timestamps"));
                }
            }
            AV_FLAGS if len != 4 => {
                return Err(NtlmError::BadTargetInfo("the flags are not 4 bytes"))
            }
            _ => {}
        }
        at += 4 + len;
    }
}

/// Parses a CHALLENGE strictly: signature, type, bounds of every field, Unicode, and a
/// well-formed target information list (NTLMv2 needs it; its absence means NTLMv1 only).
pub fn parse_challenge(msg: &[u8]) -> Result<Challenge, NtlmError> {
    if msg.len() > MAX_CHALLENGE {
        return Err(NtlmError::TooLarge(msg.len()));
    }
    if msg.get(..8).ok_or(NtlmError::Truncated("signature"))? != SIGNATURE {
        return Err(NtlmError::NotNtlmssp);
    }
    let kind = u32_at(msg, 8, "message type")?;
    if kind != 2 {
        return Err(NtlmError::WrongMessageType(kind));
    }
    let flags = u32_at(msg, 20, "flags")?;
    let server_challenge: [u8; 8] = msg
        .get(24..32)
        .and_then(|s| s.try_into().ok())
        .ok_or(NtlmError::Truncated("server challenge"))?;
    security_buffer(msg, 12, "target name")?;
    if flags & NEGOTIATE_UNICODE == 0 {
        return Err(NtlmError::NoUnicode);
    }
    if msg.len() < 48 || flags & NEGOTIATE_TARGET_INFO == 0 {
        return Err(NtlmError::NtlmV1Only);
    }
    let info = security_buffer(msg, 40, "target info")?;
    if info.is_empty() {
        return Err(NtlmError::NtlmV1Only);
    }
    let timestamp = check_target_info(info)?;
    Ok(Challenge {
        flags,
        server_challenge,
        target_info: info.to_vec(),
        timestamp,
    })
}

fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    // The caller bounds every value far below 64 KiB (the challenge is capped).
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// The target information the client returns: the server's pairs, MsvAvFlags with the MIC bit
/// (merged into the server's flags if it sent some), MsvAvChannelBindings, and MsvAvEOL.
pub fn client_target_info(server_info: &[u8], channel_bindings: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(server_info.len() + 32);
    let mut flags = AV_FLAG_MIC;
    let mut at = 0;
    while let (Some(id), Some(len)) = (server_info.get(at..at + 2), server_info.get(at + 2..at + 4))
    {
        let id = u16::from_le_bytes([id[0], id[1]]);
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let value = server_info.get(at + 4..at + 4 + len).unwrap_or_default();
        match id {
            AV_EOL => break,
            AV_FLAGS => {
                if let Ok(raw) = <[u8; 4]>::try_from(value) {
                    flags |= u32::from_le_bytes(raw);
                }
            }
            AV_CHANNEL_BINDINGS => {}
            _ => push_av(&mut out, id, value),
        }
        at += 4 + len;
    }
    push_av(&mut out, AV_FLAGS, &flags.to_le_bytes());
    push_av(&mut out, AV_CHANNEL_BINDINGS, channel_bindings);
    push_av(&mut out, AV_EOL, &[]);
    out
}

/// Encodes an AUTHENTICATE message (section 2.2.1.3) with the payload in the order domain,
/// user, workstation, LM response, NT response, encrypted session key. The MIC field, when
/// present, is zero; [`authenticate`] fills it in.
pub fn encode_authenticate(
    layout: &Layout<'_>,
    identity: &Identity,
    responses: &Responses,
    encrypted_session_key: &[u8],
) -> Result<Vec<u8>, NtlmError> {
    let domain = utf16le(&identity.domain);
    let user = utf16le(&identity.user);
    let workstation = utf16le(layout.workstation);
    if domain.len() / 2 > MAX_NAME_UNITS
        || user.len() / 2 > MAX_NAME_UNITS
        || workstation.len() / 2 > MAX_NAME_UNITS
    {
        return Err(NtlmError::NameTooLong);
    }
    let fields: [&[u8]; 6] = [
        &responses.lm_response,
        &responses.nt_response,
        &domain,
        &user,
        &workstation,
        encrypted_session_key,
    ];
    let payload_order = [2, 3, 4, 0, 1, 5];
    let mut offsets = [0usize; 6];
    let mut next = MIC_OFFSET + if layout.with_mic { MIC_LEN } else { 0 };
    for &i in &payload_order {
        offsets[i] = next;
        next += fields[i].len();
    }
    let mut m = Vec::with_capacity(next);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    for (field, offset) in fields.iter().zip(offsets) {
        let len = u16::try_from(field.len()).map_err(|_| NtlmError::NameTooLong)?;
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    m.extend_from_slice(&layout.flags.to_le_bytes());
    m.extend_from_slice(&layout.version);
    if layout.with_mic {
        m.extend_from_slice(&[0; MIC_LEN]);
    }
    for &i in &payload_order {
        m.extend_from_slice(fields[i]);
    }
    Ok(m)
}

/// The AUTHENTICATE message for `challenge_msg` (the exact bytes the server sent, which the MIC
/// covers) after `negotiate_msg`: NTLMv2 response over the server's target information plus
/// MsvAvFlags and MsvAvChannelBindings, the server's timestamp when it sent one, and always a
/// MIC.
pub fn authenticate(
    identity: &Identity,
    nt_hash: &[u8; 16],
    negotiate_msg: &[u8],
    challenge_msg: &[u8],
    input: &ClientInput,
) -> Result<Vec<u8>, NtlmError> {
    let challenge = parse_challenge(challenge_msg)?;
    let key = ntowfv2(nt_hash, identity);
    let info = client_target_info(
        &challenge.target_info,
        &input.channel_bindings.unwrap_or([0; 16]),
    );
    let responses = compute_responses(
        &key,
        &challenge.server_challenge,
        &input.client_challenge,
        challenge.timestamp.unwrap_or(input.now_filetime),
        &info,
        challenge.timestamp.is_some(),
    );
    let flags = (challenge.flags & CLIENT_FLAGS) | NEGOTIATE_UNICODE | NEGOTIATE_NTLM;
    // Without key exchange the ExportedSessionKey is the KeyExchangeKey, which for NTLMv2 is
    // the SessionBaseKey (section 3.4.5.1).
    let exported = responses.session_base_key;
    let layout = Layout {
        flags,
        version: [0; 8],
        with_mic: true,
        workstation: "",
    };
    let mut msg = encode_authenticate(&layout, identity, &responses, &[])?;
    let mic = hmac_md5(&exported, &[negotiate_msg, challenge_msg, &msg]);
    msg[MIC_OFFSET..MIC_OFFSET + MIC_LEN].copy_from_slice(&mic);
    Ok(msg)
}

/// The random client challenge of an AUTHENTICATE, drawn from the kernel (the one piece of
/// NTLM that is not a function of its inputs). Like a TLS handshake it first waits, until
/// what `end` says at most (see `HttpClient::request_end`), for the process's first draw: on a
/// kernel without getrandom that draw can block until /dev/random has entropy.
pub fn client_challenge(end: impl Fn() -> std::time::Instant) -> Result<[u8; 8], NtlmError> {
    use ring::rand::SecureRandom as _;
    super::entropy::wait_ready(std::time::Duration::from_millis(100), end)
        .map_err(|_| NtlmError::NoRandom)?;
    let mut out = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| NtlmError::NoRandom)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
