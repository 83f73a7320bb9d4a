#ifndef METAQ_CZOOKEEPER_SHIM_H
#define METAQ_CZOOKEEPER_SHIM_H
// libzookeeper_mt's header declares its synchronous API only under THREADED (toolchain.md §1).
#define THREADED 1
#include <zookeeper/zookeeper.h>
// ZOO_OPEN_ACL_UNSAFE is a mutable C global that Swift 6 refuses to touch; hand out its address.
static inline struct ACL_vector *metaq_zk_open_acl_unsafe(void) { return &ZOO_OPEN_ACL_UNSAFE; }
#endif
