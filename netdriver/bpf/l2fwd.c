// swarmr's overlay fast path: a tc ingress program on each sandbox's vxlan0 and on the
// sandbox end of every local endpoint's veth that forwards unicast frames past the
// sandbox bridge, as Cilium does for its endpoints. A frame for a local endpoint goes
// straight into that container's namespace (bpf_redirect_peer: no second veth hop, no
// backlog queue); a frame for a remote endpoint goes straight to vxlan0's transmit.
// Anything not in the map (ARP and other broadcasts, the gateway, a MAC not pushed yet)
// falls through to the bridge, which keeps working as before.
//
// Map (the worker writes it, one instance per sandbox):
//   next_hops {destination MAC} -> {ifindex in the sandbox, PEER when a local endpoint}
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define NEXT_HOP_PEER 1

struct mac_key {
	__u8 mac[6];
	__u8 pad[2];
};

struct next_hop {
	__u32 ifindex;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct mac_key);
	__type(value, struct next_hop);
} next_hops SEC(".maps");

SEC("classifier")
int swarmr_l2fwd(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	// Group addresses (broadcast, multicast) are the bridge's to flood.
	if (eth->h_dest[0] & 1)
		return TC_ACT_OK;
	struct mac_key key = {};
	__builtin_memcpy(key.mac, eth->h_dest, sizeof(key.mac));
	struct next_hop *hop = bpf_map_lookup_elem(&next_hops, &key);
	// Never back out of the device it came in on: the bridge decides such a frame.
	if (!hop || hop->ifindex == skb->ifindex)
		return TC_ACT_OK;
	if (hop->flags & NEXT_HOP_PEER)
		return bpf_redirect_peer(hop->ifindex, 0);
	return bpf_redirect(hop->ifindex, 0);
}

char _license[] SEC("license") = "GPL";
