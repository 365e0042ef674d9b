//! Wake-on-LAN: magic packets (with an optional SecureOn password), repeated, to a
//! broadcast address. Used by the wol-ssh connector and by the plugin host's capability.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::config_port as port;
use crate::connector::{ConnectorError, ErrorCode, Target};
use crate::model::ConnectorConfig;

fn invalid(target: &Target, m: &str) -> ConnectorError {
    ConnectorError::new(ErrorCode::InvalidConfig, format!("{}: wol-ssh: {m}", target.name))
}

pub(crate) fn parse_hex_bytes(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
    // ASCII only: slicing below is then on character boundaries.
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()
}

pub(crate) fn mac_of(config: &ConnectorConfig) -> Result<[u8; 6], String> {
    let mac = config.str("mac").ok_or("wol-ssh: `mac` (aa:bb:cc:dd:ee:ff) is required")?;
    parse_hex_bytes(mac)
        .and_then(|b| <[u8; 6]>::try_from(b).ok())
        .ok_or_else(|| format!("wol-ssh: `mac` `{mac}` is not six hex bytes"))
}

/// The magic packet: 6 × 0xFF then the MAC 16 times (102 bytes), plus the SecureOn password.
pub fn magic_packet(mac: [u8; 6], secureon: Option<&[u8]>) -> Vec<u8> {
    let mut packet = wake_on_lan::MagicPacket::new(&mac).magic_bytes().to_vec();
    if let Some(p) = secureon {
        packet.extend_from_slice(p);
    }
    packet
}

/// Wakes the node: its `mac`, `secureon_password`, `broadcast`, `wol_port` and `repeats`.
pub(crate) async fn wake(target: &Target) -> Result<(), ConnectorError> {
    let mac = mac_of(&target.config).map_err(|e| invalid(target, &e))?;
    let secureon = target.secret(&target.config, "secureon_password")?;
    let secureon = match &secureon {
        Some(s) => Some(
            parse_hex_bytes(s.expose())
                .filter(|b| b.len() == 4 || b.len() == 6)
                .ok_or_else(|| invalid(target, "`secureon_password` must be 4 or 6 hex bytes"))?,
        ),
        None => None,
    };
    let broadcast = target.config.str("broadcast").unwrap_or("255.255.255.255");
    let wol_port = port(&target.config, "wol_port", 9).map_err(|e| invalid(target, &e))?;
    let addr: SocketAddr = format!("{broadcast}:{wol_port}")
        .parse()
        .map_err(|_| invalid(target, &format!("`broadcast` `{broadcast}` is not an IP address")))?;
    let repeats = target.config.int("repeats").unwrap_or(3).clamp(1, 10);
    let packet = magic_packet(mac, secureon.as_deref());
    let bind = if addr.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|e| ConnectorError::new(ErrorCode::PlatformError, format!("{}: wol-ssh: {e}", target.name)))?;
    socket
        .set_broadcast(true)
        .map_err(|e| ConnectorError::new(ErrorCode::PlatformError, format!("{}: wol-ssh: {e}", target.name)))?;
    for i in 0..repeats {
        socket.send_to(&packet, addr).await.map_err(|e| {
            ConnectorError::new(
                ErrorCode::Unreachable,
                format!("{}: wol-ssh: cannot send the magic packet to {addr}: {e}", target.name),
            )
        })?;
        if i + 1 < repeats {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_packets_have_the_standard_layout() {
        let mac = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01];
        let p = magic_packet(mac, None);
        assert_eq!(p.len(), 102);
        assert!(p[..6].iter().all(|b| *b == 0xff));
        assert!(p[6..].chunks(6).all(|c| c == mac));
        assert_eq!(magic_packet(mac, Some(&[1, 2, 3, 4, 5, 6])).len(), 108);
        assert_eq!(parse_hex_bytes("aa:bb:cc:dd:ee:01").unwrap(), mac);
        // Non-ASCII input of an even byte length is refused, not sliced mid-character.
        assert_eq!(parse_hex_bytes("éé:ab:cd:ef:01"), None);
    }
}
