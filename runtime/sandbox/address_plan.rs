//! Which addresses a sandbox hands out: one slot of 198.18.0.0/15 (RFC 2544's
//! benchmarking range, unused on real networks) per sandbox, split into the
//! veth link and one /24 per cluster (pods, nodes, LoadBalancer addresses).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::nodes::NodeAddresses;

/// Every sandbox's addresses come from here.
pub const SANDBOX_RANGE: Ipv4Prefix = Ipv4Prefix {
    addr: Ipv4Addr::new(198, 18, 0, 0),
    len: 15,
};

/// One /24 per cluster; the first /24 of a slot holds the veth link.
const CLUSTER_LEN: u8 = 24;
/// The smallest slot: the link and three clusters.
const MIN_SLOT_LEN: u8 = 22;

/// An IPv4 network such as `198.18.4.0/22`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Prefix {
    /// How many addresses it holds.
    pub fn size(&self) -> u64 {
        u64::from(!mask(self.len)) + 1
    }

    fn first(&self) -> u32 {
        u32::from(self.addr) & mask(self.len)
    }

    fn last(&self) -> u32 {
        self.first() | !mask(self.len)
    }

    /// The `n`-th address of the network (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + n)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (self.first()..=self.last()).contains(&u32::from(addr))
    }

    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.first()), self.len)
    }
}

/// `a.b.c.d/len`, or a bare address (a /32), as `ip` prints them.
impl FromStr for Ipv4Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, len) = text.split_once('/').unwrap_or((text, "32"));
        let addr = addr.parse().map_err(|_| format!("not an IPv4 address: {text:?}"))?;
        let len = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or(format!("bad prefix length: {text:?}"))?;
        Ok(Ipv4Prefix { addr, len })
    }
}

/// The addresses of one cluster, from its /24.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAddresses {
    /// The whole /24: answered inside the sandbox's network namespace.
    pub block: Ipv4Prefix,
    /// The lower /25, for pod IPs.
    pub pod_cidr: Ipv4Prefix,
    /// Two node IPs: the first two of the upper /25.
    pub node_ips: Vec<Ipv4Addr>,
    /// The rest of the upper /25 (125 addresses), for LoadBalancer Services.
    pub load_balancers: Vec<Ipv4Addr>,
}

impl ClusterAddresses {
    /// What kwok and the Node objects get.
    pub fn node_addresses(&self) -> NodeAddresses {
        NodeAddresses {
            pod_cidr: self.pod_cidr.to_string(),
            node_ips: self.node_ips.clone(),
        }
    }
}

/// One sandbox's slot of [`SANDBOX_RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPlan {
    pub slot: Ipv4Prefix,
}

impl AddressPlan {
    /// The slot length that fits the link and `clusters` /24s (a /22 up to three clusters).
    pub fn slot_len(clusters: usize) -> u8 {
        let blocks = (clusters + 1).next_power_of_two() as u32;
        (CLUSTER_LEN - blocks.trailing_zeros() as u8).min(MIN_SLOT_LEN)
    }

    /// Every slot for `clusters` clusters, in order (none if they cannot fit the range).
    pub fn candidates(clusters: usize) -> impl Iterator<Item = AddressPlan> {
        let len = Self::slot_len(clusters);
        let count = if len < SANDBOX_RANGE.len {
            0
        } else {
            1u32 << (len - SANDBOX_RANGE.len)
        };
        (0..count).map(move |i| AddressPlan {
            slot: Ipv4Prefix {
                addr: SANDBOX_RANGE.nth(i << (32 - len)),
                len,
            },
        })
    }

    /// The first slot, for a sandbox without a namespace: its LoadBalancer
    /// addresses are then data only (nothing answers them), but still never
    /// addresses of a real network.
    pub fn data_only(clusters: usize) -> AddressPlan {
        AddressPlan {
            slot: Ipv4Prefix {
                addr: SANDBOX_RANGE.addr,
                len: Self::slot_len(clusters),
            },
        }
    }

    /// The host end of the veth (a /30 at the start of the slot).
    pub fn host_address(&self) -> Ipv4Addr {
        self.slot.nth(1)
    }

    /// The namespace end of the veth: the host's gateway into the slot.
    pub fn namespace_address(&self) -> Ipv4Addr {
        self.slot.nth(2)
    }

    pub fn link(&self) -> Ipv4Prefix {
        Ipv4Prefix {
            addr: self.slot.nth(0),
            len: 30,
        }
    }

    /// How many clusters the slot holds.
    pub fn capacity(&self) -> usize {
        (self.slot.size() >> (32 - CLUSTER_LEN)) as usize - 1
    }

    /// The addresses of the `index`-th cluster (from 0); `index < capacity()`.
    pub fn cluster(&self, index: usize) -> ClusterAddresses {
        let block = Ipv4Prefix {
            addr: self.slot.nth((index as u32 + 1) << (32 - CLUSTER_LEN)),
            len: CLUSTER_LEN,
        };
        ClusterAddresses {
            block,
            pod_cidr: Ipv4Prefix {
                addr: block.addr,
                len: CLUSTER_LEN + 1,
            },
            node_ips: vec![block.nth(128), block.nth(129)],
            load_balancers: (130..255).map(|n| block.nth(n)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> Ipv4Prefix {
        text.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_print_and_overlap() {
        assert_eq!(prefix("198.18.4.7/22").to_string(), "198.18.4.0/22");
        assert_eq!(
            prefix("10.0.0.1"),
            Ipv4Prefix {
                addr: Ipv4Addr::new(10, 0, 0, 1),
                len: 32
            }
        );
        assert!(prefix("198.18.0.0/15").overlaps(&prefix("198.19.3.1")));
        assert!(!prefix("198.18.0.0/22").overlaps(&prefix("198.18.4.0/22")));
        assert!("198.18.0.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("default".parse::<Ipv4Prefix>().is_err());
    }

    #[test]
    fn up_to_three_clusters_share_a_22_and_more_get_a_bigger_slot() {
        assert_eq!(AddressPlan::slot_len(1), 22);
        assert_eq!(AddressPlan::slot_len(3), 22);
        assert_eq!(AddressPlan::slot_len(4), 21);
        assert_eq!(AddressPlan::candidates(2).count(), 128);
        let plans: Vec<_> = AddressPlan::candidates(5).collect();
        assert_eq!(plans[1].slot, prefix("198.18.8.0/21"));
        assert!(plans[1].capacity() >= 5);
        assert_eq!(plans.last().unwrap().slot, prefix("198.19.248.0/21"));
    }

    #[test]
    fn a_slot_splits_into_the_link_and_one_24_per_cluster() {
        let plan = AddressPlan {
            slot: prefix("198.18.4.0/22"),
        };
        assert_eq!(
            (plan.host_address(), plan.namespace_address()),
            (Ipv4Addr::new(198, 18, 4, 1), Ipv4Addr::new(198, 18, 4, 2))
        );
        assert_eq!(plan.capacity(), 3);
        let second = plan.cluster(1);
        assert_eq!(second.block, prefix("198.18.6.0/24"));
        assert_eq!(second.pod_cidr, prefix("198.18.6.0/25"));
        assert_eq!(
            second.node_ips,
            vec![Ipv4Addr::new(198, 18, 6, 128), Ipv4Addr::new(198, 18, 6, 129)]
        );
        assert_eq!(second.load_balancers.first(), Some(&Ipv4Addr::new(198, 18, 6, 130)));
        assert_eq!(second.load_balancers.last(), Some(&Ipv4Addr::new(198, 18, 6, 254)));
        assert!(!plan.link().overlaps(&plan.cluster(0).block));
        assert!(plan.slot.contains(plan.cluster(2).load_balancers[0]));
    }
}
