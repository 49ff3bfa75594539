//! The network a client address belongs to, for per-client budgets (login throttling, pending
//! authorization requests): an IPv4 address as itself, an IPv6 address as its /64 — the
//! smallest block an end site is given, so one host cannot dodge a budget by walking through the
//! 2^64 addresses it controls (DOS-08). IPv4-mapped IPv6 addresses count as IPv4.

use std::net::{IpAddr, Ipv6Addr};

/// The budget key of `ip`: `a.b.c.d`, or `x:x:x:x::/64`.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key_and_ipv4_stays_exact() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(network_of(a), "2001:db8:1:2::/64");
        assert_eq!(network_of(a), network_of(b));
        assert_ne!(network_of(a), network_of(c));
        assert_eq!(network_of(IpAddr::from([192, 0, 2, 7])), "192.0.2.7");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(network_of(mapped), "192.0.2.7");
    }
}
