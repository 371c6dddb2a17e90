//! Open connections per client address, so one host cannot hold the
//! whole `http.max_connections`.
//!
//! Addresses in `http.trusted_proxies` are not counted: behind a load
//! balancer every connection comes from it. The map holds only addresses
//! with a connection open, so its size follows the open connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use ipnet::IpNet;

/// The per-address counts of one listener.
#[derive(Debug)]
pub struct PerIpConnections {
    open: Mutex<HashMap<IpAddr, u32>>,
    cap: u32,
    exempt: Vec<IpNet>,
}

/// One counted connection; dropping it frees the address's slot.
#[derive(Debug)]
pub struct IpSlot {
    owner: Arc<PerIpConnections>,
    ip: IpAddr,
}

impl PerIpConnections {
    pub fn new(cap: usize, exempt: &[IpNet]) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            cap: u32::try_from(cap).unwrap_or(u32::MAX),
            exempt: exempt.to_vec(),
        })
    }

    /// A slot for a connection from `ip`: `Some(None)` for an exempt
    /// proxy, `None` when the address already holds its cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Option<IpSlot>> {
        let ip = ip.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&ip)) {
            return Some(None);
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Some(IpSlot {
            owner: self.clone(),
            ip,
        }))
    }

    /// Addresses with at least one connection open.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self
            .owner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_cap_and_proxies_have_none() {
        let proxy: IpNet = "10.0.0.0/8".parse().expect("net");
        let conns = PerIpConnections::new(2, &[proxy]);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = conns.admit(a).expect("first");
        let second = conns.admit(a).expect("second");
        assert!(conns.admit(a).is_none(), "a third from one address");
        assert!(conns.admit(b).is_some(), "another address is admitted");
        let proxied: Vec<_> = (0..10)
            .map(|_| conns.admit("10.1.2.3".parse().expect("ip")))
            .collect();
        assert!(proxied.iter().all(Option::is_some));
        drop(first);
        assert!(conns.admit(a).is_some(), "a freed slot is reused");
        drop(second);
        assert_eq!(conns.addresses(), 0, "closed addresses leave the map");
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let conns = PerIpConnections::new(1, &[]);
        let _v4 = conns.admit("192.0.2.1".parse().expect("ip")).expect("v4");
        assert!(
            conns
                .admit("::ffff:192.0.2.1".parse().expect("ip"))
                .is_none()
        );
    }
}
