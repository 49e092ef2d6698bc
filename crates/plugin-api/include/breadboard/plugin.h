/* breadboard device plugin ABI, version 1.1.
 *
 * A plugin is a shared library exporting two symbols:
 *   - `breadboard_plugin_abi`  (a `bb_plugin_abi`, data): read by the host BEFORE any call, to
 *     check the ABI version and the size of every struct the plugin was built with;
 *   - `breadboard_plugin_init` (a `bb_plugin_init_fn`): fills a `bb_plugin_info` with the
 *     device types the plugin provides.
 * Use BB_PLUGIN_DECLARE_ABI() once in the plugin to define the first.
 *
 * Versioning: the major number changes on any incompatible change; the minor number grows
 * when fields are appended to the end of a struct. Every struct starts with `size`, the
 * sizeof() the plugin was built with; the host reads no field past it. A plugin built for an
 * older minor version keeps working; one built for a newer minor than the host is refused.
 *
 * Threading: every callback runs on the emulator's main loop; none may block for long.
 * All strings are NUL-terminated UTF-8. The Rust definitions in
 * crates/plugin-api/src/sys.rs must match this file; a test checks every size and offset.
 */
#ifndef BREADBOARD_PLUGIN_H
#define BREADBOARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BB_ABI_MAJOR 1
#define BB_ABI_MINOR 1

/* Property kinds (validated by the host exactly as built-in properties are). */
#define BB_PROP_INT 0     /* unsigned 64-bit integer, decimal or 0x hex */
#define BB_PROP_SIZE 1    /* size in bytes, K/M/G suffixes */
#define BB_PROP_BOOL 2    /* on/off */
#define BB_PROP_STR 3     /* free text */
#define BB_PROP_CHARDEV 4 /* id of a chardev; the first one is the device's chr_write target */
#define BB_PROP_LINK 5    /* QOM path of another object */

/* Log levels. */
#define BB_LOG_GUEST_ERROR 0 /* the guest did something wrong */
#define BB_LOG_UNIMP 1       /* the guest used something the model does not implement */
#define BB_LOG_INFO 2

/* Status codes of host services. */
#define BB_OK 0
#define BB_ERR_UNMAPPED -1 /* DMA: nothing (or not RAM) mapped at the address */
#define BB_ERR_READONLY -2 /* DMA: write to ROM */
#define BB_ERR_MMIO -3     /* DMA: the target is device registers, which DMA may not reach */
#define BB_ERR_INVAL -4    /* bad argument (unknown property, wrong kind, NULL pointer) */
#define BB_ERR_NOSPACE -5  /* the output buffer is too small */

/* The host's per-device handle: opaque to the plugin, valid until `destroy` returns. */
typedef struct bb_host bb_host;
/* A device tree node being written: valid only during `write_fdt`. */
typedef struct bb_fdt bb_fdt;

/* Host services. `size` is sizeof(bb_host_api) of the host; check it before using a field
 * added in a minor version later than 1.0. */
typedef struct bb_host_api {
    uint32_t size;
    uint16_t abi_major;
    uint16_t abi_minor;
    /* Virtual time in nanoseconds since machine start. */
    uint64_t (*now_ns)(bb_host *host);
    /* Arms timer `token` at absolute virtual time `deadline_ns` (replacing an earlier
     * deadline); `ops->timer(dev, token)` runs then. */
    void (*timer_mod)(bb_host *host, uint64_t token, uint64_t deadline_ns);
    void (*timer_del)(bb_host *host, uint64_t token);
    /* Drives IRQ output `line` (sysbus-irq[line]) to `level` (0 or 1). */
    void (*irq_set)(bb_host *host, uint32_t line, int level);
    /* DMA through guest RAM. Returns BB_OK or BB_ERR_UNMAPPED/READONLY/MMIO; nothing is
     * transferred on error. */
    int (*dma_read)(bb_host *host, uint64_t addr, void *buf, size_t len);
    int (*dma_write)(bb_host *host, uint64_t addr, const void *buf, size_t len);
    /* Writes to the device's chardev (its first BB_PROP_CHARDEV property); returns bytes
     * accepted (all of them, or 0 without a chardev). Input arrives via ops->receive. */
    size_t (*chr_write)(bb_host *host, const uint8_t *buf, size_t len);
    /* Logs `len` bytes of `msg` at `level`. `host` may be NULL (during init). */
    void (*log)(bb_host *host, uint32_t level, const char *msg, size_t len);
    /* Validated property values (defaults filled in). BB_ERR_INVAL for an unknown name or a
     * property of another kind. `prop_str` copies at most `cap` bytes plus nothing else and
     * stores the full length in *len; an unset optional string has length 0. */
    int (*prop_u64)(bb_host *host, const char *name, uint64_t *out);
    int (*prop_bool)(bb_host *host, const char *name, int *out);
    int (*prop_str)(bb_host *host, const char *name, char *buf, size_t cap, size_t *len);
    /* Extra device tree properties, from `write_fdt` only. */
    int (*fdt_prop_u32)(bb_fdt *fdt, const char *name, uint32_t value);
    int (*fdt_prop_cells)(bb_fdt *fdt, const char *name, const uint32_t *cells, size_t n);
    int (*fdt_prop_string)(bb_fdt *fdt, const char *name, const char *value);
    int (*fdt_prop_empty)(bb_fdt *fdt, const char *name);
    /* Added in 1.1: the device failed beyond recovery (e.g. a Rust panic). The host logs
     * `msg` once, then the device reads 0, drops writes and gets no more calls. */
    void (*mark_broken)(bb_host *host, const char *msg, size_t len);
} bb_host_api;

/* A property the device type declares. */
typedef struct bb_prop_decl {
    uint32_t size;
    uint32_t kind;            /* BB_PROP_* */
    const char *name;
    const char *default_value; /* text parsed like user input; NULL = required, "" = unset */
    const char *doc;
    uint64_t max;             /* inclusive upper bound for integers; 0 = none */
} bb_prop_decl;

/* An MMIO region of the device (region index = position in the array). */
typedef struct bb_region_decl {
    uint32_t size;
    uint32_t reserved;
    const char *name;
    uint64_t length;
} bb_region_decl;

/* What the host calls. `dev` is what `create` returned. Required: create, destroy, read,
 * write. The others may be NULL. */
typedef struct bb_device_ops {
    uint32_t size;
    uint32_t reserved;
    /* Builds and realizes a device. On failure returns NULL and writes a message (at most
     * err_cap bytes including the NUL) to `err`. */
    void *(*create)(bb_host *host, const bb_host_api *api, char *err, size_t err_cap);
    void (*destroy)(void *dev);
    /* MMIO access of `size` bytes (1, 2, 4, 8) at `offset` of region `region`. */
    uint64_t (*read)(void *dev, uint32_t region, uint64_t offset, uint32_t size);
    void (*write)(void *dev, uint32_t region, uint64_t offset, uint32_t size, uint64_t value);
    void (*reset)(void *dev);
    void (*timer)(void *dev, uint64_t token);
    /* GPIO input `line` (unnamed-gpio-in[line]) changed level. */
    void (*set_gpio)(void *dev, uint32_t line, int level);
    /* Chardev input: how many bytes the device takes now, then the bytes. */
    size_t (*can_receive)(void *dev);
    void (*receive)(void *dev, const uint8_t *buf, size_t len);
    /* Adds properties to the device's DT node; the host has written compatible, reg,
     * interrupt-parent/interrupts already. Returns BB_OK or an error from a fdt_* call. */
    int (*write_fdt)(void *dev, bb_fdt *fdt);
    /* Added in 1.1 (optional): snapshot state as bytes. `save` returns the length needed;
     * it writes only when cap is large enough. `load` returns BB_OK or an error. */
    size_t (*snapshot_save)(void *dev, uint8_t *buf, size_t cap);
    int (*snapshot_load)(void *dev, const uint8_t *buf, size_t len);
} bb_device_ops;

/* Size of bb_device_ops in ABI 1.0 (before the snapshot fields). */
#define BB_DEVICE_OPS_SIZE_1_0 offsetof(bb_device_ops, snapshot_save)
/* Size of bb_host_api in ABI 1.0 (before mark_broken). */
#define BB_HOST_API_SIZE_1_0 offsetof(bb_host_api, mark_broken)

/* A device type. */
typedef struct bb_device_type {
    uint32_t size;
    uint32_t user_creatable; /* may -device / device_add make it */
    const char *name;
    const char *description;
    const char *const *compatible; /* most specific first; the host writes them all */
    size_t n_compatible;
    const char *node_name;         /* DT node name prefix, e.g. "dma" -> dma@10001000 */
    const bb_prop_decl *props;
    size_t n_props;
    const bb_region_decl *regions;
    size_t n_regions;
    uint32_t num_irqs;    /* IRQ outputs, sysbus-irq[0..] */
    uint32_t num_gpio_in; /* GPIO inputs, unnamed-gpio-in[0..] */
    const bb_device_ops *ops;
} bb_device_type;

/* What init fills in. The pointed-to data must stay valid while the library is loaded. */
typedef struct bb_plugin_info {
    uint32_t size; /* set by the host: sizeof(bb_plugin_info) on its side */
    uint32_t reserved;
    const char *name;
    const bb_device_type *types;
    size_t n_types;
} bb_plugin_info;

/* The exported version record, read before any call. */
typedef struct bb_plugin_abi {
    uint32_t magic; /* BB_PLUGIN_MAGIC */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t plugin_info_size;
    uint32_t device_type_size;
    uint32_t device_ops_size;
    uint32_t prop_decl_size;
    uint32_t region_decl_size;
    uint32_t host_api_size;
} bb_plugin_abi;

#define BB_PLUGIN_MAGIC 0x62627031u /* "bbp1" */

/* Returns 0 on success; a nonzero result refuses the load. */
typedef int (*bb_plugin_init_fn)(const bb_host_api *host, bb_plugin_info *out);

#define BB_PLUGIN_DECLARE_ABI()                                                            \
    const bb_plugin_abi breadboard_plugin_abi = {                                          \
        BB_PLUGIN_MAGIC,          BB_ABI_MAJOR,           BB_ABI_MINOR,                    \
        sizeof(bb_plugin_info),   sizeof(bb_device_type), sizeof(bb_device_ops),           \
        sizeof(bb_prop_decl),     sizeof(bb_region_decl), sizeof(bb_host_api)}

#ifdef __cplusplus
}
#endif

#endif /* BREADBOARD_PLUGIN_H */
