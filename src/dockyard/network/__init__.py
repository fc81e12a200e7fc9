"""Container networking on Linux primitives: network namespaces, bridges and veth pairs
(pyroute2), IPAM, nftables rules in a table of our own, published ports and embedded DNS."""
