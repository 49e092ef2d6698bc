/*
 * fdt.c - a small, defensive flattened-device-tree walker.
 *
 * Every offset and length taken from the blob is checked against the
 * header's sizes before it is used, so a corrupt blob is reported instead
 * of being read past its end.  Prints one line per node:
 *   <full path> [compatible="a","b"] [reg=<addr size>[, <addr size>...]]
 * reg is decoded with the parent's #address-cells / #size-cells.
 */
#include "demo.h"

#define FDT_MAGIC       0xd00dfeedU
#define FDT_BEGIN_NODE  1
#define FDT_END_NODE    2
#define FDT_PROP        3
#define FDT_NOP         4
#define FDT_END         9

#define FDT_HEADER_SIZE 40
#define FDT_MAX_SIZE    (4u << 20)      /* refuse absurd blobs */
#define MAX_DEPTH       16
#define MAX_PATH        256
#define MAX_REG_CELLS   64

static u32 be32(const u8 *p)
{
        return ((u32)p[0] << 24) | ((u32)p[1] << 16) | ((u32)p[2] << 8) | p[3];
}

static int str_eq(const char *a, const char *b)
{
        while (*a && *a == *b) {
                a++;
                b++;
        }
        return *a == *b;
}

/* length of a NUL-terminated string starting at p, which must end before
 * `end`; returns -1 if no terminator is found in bounds. */
static long bounded_strlen(const u8 *p, const u8 *end)
{
        const u8 *q = p;
        while (q < end) {
                if (*q == 0)
                        return q - p;
                q++;
        }
        return -1;
}

struct node_state {
        u32 addr_cells;         /* #address-cells this node gives its children */
        u32 size_cells;
        u32 path_len;           /* length of this node's path in the buffer */
        int printed;
        const u8 *compat;
        u32 compat_len;
        const u8 *reg;
        u32 reg_len;
};

static char path[MAX_PATH];

static void print_compat(const u8 *p, u32 len)
{
        u32 i;
        int open = 0;
        puts(" compatible=");
        for (i = 0; i < len; i++) {
                char c = (char)p[i];
                if (c == 0) {
                        if (open) {
                                putc('"');
                                open = 0;
                        }
                        continue;
                }
                if (!open) {
                        if (i != 0)
                                putc(',');
                        putc('"');
                        open = 1;
                }
                putc((c >= 0x20 && c < 0x7f) ? c : '?');
        }
        if (open)
                putc('"');
}

static u64 read_cells(const u8 *p, u32 n)
{
        u64 v = 0;
        u32 i;
        for (i = 0; i < n; i++)
                v = (v << 32) | be32(p + 4 * i);
        return v;
}

static void print_reg(const u8 *p, u32 len, u32 ac, u32 sc)
{
        u32 ncells = len / 4, per = ac + sc, i;
        puts(" reg=");
        if (per == 0 || ac > 2 || sc > 2 || len % 4 || ncells % per) {
                /* cannot decode as address/size pairs: raw cells */
                putc('[');
                for (i = 0; i < ncells && i < MAX_REG_CELLS; i++) {
                        if (i)
                                putc(' ');
                        puthex(be32(p + 4 * i));
                }
                putc(']');
                return;
        }
        for (i = 0; i < ncells && i < MAX_REG_CELLS; i += per) {
                if (i)
                        puts(", ");
                putc('<');
                puthex(read_cells(p + 4 * i, ac));
                if (sc) {
                        putc(' ');
                        puthex(read_cells(p + 4 * (i + ac), sc));
                }
                putc('>');
        }
}

static void flush_node(struct node_state *n, const struct node_state *parent)
{
        if (n->printed)
                return;
        n->printed = 1;
        puts("  ");
        puts(path);
        if (n->compat)
                print_compat(n->compat, n->compat_len);
        if (n->reg)
                print_reg(n->reg, n->reg_len,
                          parent ? parent->addr_cells : 2,
                          parent ? parent->size_cells : 1);
        putc('\n');
}

const char *fdt_walk(const void *blob)
{
        const u8 *b = blob;
        struct node_state st[MAX_DEPTH];
        int depth = -1;                 /* index of the current node */
        u32 nodes = 0;

        if (!b)
                return "no device tree (a1 = 0)";
        if ((uptr)b & 3)
                return "device tree pointer is not 4-byte aligned";
        if (be32(b) != FDT_MAGIC)
                return "bad device tree magic";

        u32 totalsize = be32(b + 4);
        u32 off_struct = be32(b + 8);
        u32 off_strings = be32(b + 12);
        u32 off_rsvmap = be32(b + 16);
        u32 version = be32(b + 20);
        u32 last_comp = be32(b + 24);
        u32 size_strings = be32(b + 32);
        u32 size_struct = be32(b + 36);

        if (totalsize < FDT_HEADER_SIZE || totalsize > FDT_MAX_SIZE)
                return "bad device tree totalsize";
        if (version < 17 || last_comp > 17)
                return "unsupported device tree version";
        if (off_struct < FDT_HEADER_SIZE || (off_struct & 3) ||
            (u64)off_struct + size_struct > totalsize || size_struct < 4)
                return "device tree structure block out of bounds";
        if (off_strings < FDT_HEADER_SIZE ||
            (u64)off_strings + size_strings > totalsize)
                return "device tree strings block out of bounds";
        if (off_rsvmap < FDT_HEADER_SIZE || (off_rsvmap & 7) ||
            (u64)off_rsvmap + 16 > totalsize)
                return "device tree reserve map out of bounds";

        puts("device tree: ");
        putdec(totalsize);
        puts(" bytes, version ");
        putdec(version);
        putc('\n');

        const u8 *s = b + off_struct, *s_end = s + size_struct;
        const u8 *str = b + off_strings, *str_end = str + size_strings;
        const u8 *p = s;

        for (;;) {
                if (p + 4 > s_end)
                        return "device tree ends without FDT_END";
                u32 tok = be32(p);
                p += 4;
                switch (tok) {
                case FDT_BEGIN_NODE: {
                        long nl = bounded_strlen(p, s_end);
                        if (nl < 0)
                                return "unterminated node name";
                        if (depth >= 0)
                                flush_node(&st[depth], depth > 0 ? &st[depth - 1] : 0);
                        if (depth + 1 >= MAX_DEPTH)
                                return "device tree nested too deeply";
                        if (depth < 0 && nl != 0)
                                return "root node has a name";
                        if (depth < 0 && nodes != 0)
                                return "more than one root node";
                        u32 base = depth < 0 ? 0 : st[depth].path_len;
                        u32 len;
                        if (depth < 0) {
                                path[0] = '/';
                                len = 1;
                        } else {
                                len = base;
                                if (len + 1 + (u32)nl + 1 > MAX_PATH)
                                        return "device tree path too long";
                                if (len > 1)
                                        path[len++] = '/';
                                for (long i = 0; i < nl; i++)
                                        path[len++] = (char)p[i];
                        }
                        path[len] = 0;
                        depth++;
                        nodes++;
                        st[depth].addr_cells = 2;
                        st[depth].size_cells = 1;
                        st[depth].path_len = len;
                        st[depth].printed = 0;
                        st[depth].compat = 0;
                        st[depth].compat_len = 0;
                        st[depth].reg = 0;
                        st[depth].reg_len = 0;
                        p += ((u32)nl + 1 + 3) & ~3u;
                        break;
                }
                case FDT_END_NODE:
                        if (depth < 0)
                                return "unbalanced FDT_END_NODE";
                        flush_node(&st[depth], depth > 0 ? &st[depth - 1] : 0);
                        depth--;
                        if (depth >= 0)
                                path[st[depth].path_len] = 0;
                        break;
                case FDT_PROP: {
                        if (depth < 0)
                                return "property outside of any node";
                        if (p + 8 > s_end)
                                return "truncated property header";
                        u32 plen = be32(p);
                        u32 nameoff = be32(p + 4);
                        p += 8;
                        if (plen > (u32)(s_end - p))
                                return "property value out of bounds";
                        if (nameoff >= size_strings)
                                return "property name offset out of bounds";
                        const char *name = (const char *)(str + nameoff);
                        if (bounded_strlen((const u8 *)name, str_end) < 0)
                                return "unterminated property name";
                        struct node_state *n = &st[depth];
                        if (str_eq(name, "compatible")) {
                                n->compat = p;
                                n->compat_len = plen;
                        } else if (str_eq(name, "reg")) {
                                n->reg = p;
                                n->reg_len = plen;
                        } else if (str_eq(name, "#address-cells") && plen == 4) {
                                n->addr_cells = be32(p);
                        } else if (str_eq(name, "#size-cells") && plen == 4) {
                                n->size_cells = be32(p);
                        }
                        p += (plen + 3) & ~3u;
                        break;
                }
                case FDT_NOP:
                        break;
                case FDT_END:
                        if (depth != -1)
                                return "FDT_END inside a node";
                        if (nodes == 0)
                                return "device tree has no nodes";
                        puts("device tree: ");
                        putdec(nodes);
                        puts(" nodes\n");
                        return 0;
                default:
                        return "bad device tree token";
                }
                if (p > s_end)
                        return "device tree structure overrun";
        }
}
