// swarmr's socket load balancer for VIPs: cgroup sock_addr programs that rewrite a
// connect() or sendmsg() to a VIP into one of its backends, once per connection, so the
// container's namespace needs neither NAT nor connection tracking (Cilium's socket LB).
// Attached at the cgroup v2 root, so they run for every process; entries are keyed by
// the caller's network namespace cookie, so only the task namespaces a worker wrote
// entries for are balanced and everything else passes untouched.
//
// Maps (the worker writes the first two, the programs the others):
//   vips      {netns, vip}       -> {backend count, generation, round-robin counter}
//   backends  {netns, vip, slot} -> backend address
//   reverse   {socket, backend, port} -> vip  (getpeername/recvmsg show the VIP)
//   affinity  {socket, vip}      -> {backend, generation}  (a UDP socket's datagrams
//                                   to one VIP stay on one backend until the set changes)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct vip_key {
	__u64 netns;
	__u32 vip;
	__u32 pad;
};

struct vip_value {
	__u32 count;
	__u32 generation;
	__u32 next;
	__u32 pad;
};

struct backend_key {
	__u64 netns;
	__u32 vip;
	__u32 slot;
};

struct rev_key {
	__u64 sock;
	__u32 addr;
	__u32 port;
};

struct affinity_value {
	__u32 backend;
	__u32 generation;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct vip_key);
	__type(value, struct vip_value);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
	__type(key, struct backend_key);
	__type(value, __u32);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rev_key);
	__type(value, __u32);
} reverse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rev_key);
	__type(value, struct affinity_value);
} affinity SEC(".maps");

// Allow and deny, as the kernel reads a cgroup sock_addr program's return value.
#define ALLOW 1
#define DENY 0

// The backend for a new connection to `svc`, round robin; 0 when none is left.
static __always_inline __u32 pick(struct vip_key *key, struct vip_value *svc)
{
	__u32 count = svc->count;
	if (count == 0)
		return 0;
	struct backend_key bk = {
		.netns = key->netns,
		.vip = key->vip,
		.slot = __sync_fetch_and_add(&svc->next, 1) % count,
	};
	__u32 *backend = bpf_map_lookup_elem(&backends, &bk);
	return backend ? *backend : 0;
}

static __always_inline void remember(struct bpf_sock_addr *ctx, __u32 backend, __u32 vip)
{
	struct rev_key rk = {
		.sock = bpf_get_socket_cookie(ctx),
		.addr = backend,
		.port = ctx->user_port,
	};
	bpf_map_update_elem(&reverse, &rk, &vip, BPF_ANY);
}

SEC("cgroup/connect4")
int swarmr_connect4(struct bpf_sock_addr *ctx)
{
	struct vip_key key = { .netns = bpf_get_netns_cookie(ctx), .vip = ctx->user_ip4 };
	struct vip_value *svc = bpf_map_lookup_elem(&vips, &key);
	if (!svc)
		return ALLOW;
	// A VIP with no backend refuses at once rather than leaving the caller to time out.
	__u32 backend = pick(&key, svc);
	if (backend == 0)
		return DENY;
	ctx->user_ip4 = backend;
	remember(ctx, backend, key.vip);
	return ALLOW;
}

SEC("cgroup/sendmsg4")
int swarmr_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct vip_key key = { .netns = bpf_get_netns_cookie(ctx), .vip = ctx->user_ip4 };
	struct vip_value *svc = bpf_map_lookup_elem(&vips, &key);
	if (!svc)
		return ALLOW;
	struct rev_key ak = { .sock = bpf_get_socket_cookie(ctx), .addr = key.vip };
	struct affinity_value *sticky = bpf_map_lookup_elem(&affinity, &ak);
	__u32 backend;
	if (sticky && sticky->generation == svc->generation) {
		backend = sticky->backend;
	} else {
		backend = pick(&key, svc);
		if (backend == 0)
			return DENY;
		struct affinity_value chosen = { .backend = backend, .generation = svc->generation };
		bpf_map_update_elem(&affinity, &ak, &chosen, BPF_ANY);
	}
	ctx->user_ip4 = backend;
	remember(ctx, backend, key.vip);
	return ALLOW;
}

// Replies and the peer name show the VIP the application asked for.
static __always_inline int unmap(struct bpf_sock_addr *ctx)
{
	struct rev_key rk = {
		.sock = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = ctx->user_port,
	};
	__u32 *vip = bpf_map_lookup_elem(&reverse, &rk);
	if (vip)
		ctx->user_ip4 = *vip;
	return ALLOW;
}

SEC("cgroup/recvmsg4")
int swarmr_recvmsg4(struct bpf_sock_addr *ctx)
{
	return unmap(ctx);
}

SEC("cgroup/getpeername4")
int swarmr_getpeername4(struct bpf_sock_addr *ctx)
{
	return unmap(ctx);
}

char LICENSE[] SEC("license") = "GPL";
