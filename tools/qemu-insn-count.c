/* A QEMU TCG plugin that counts the guest instructions a program executes: ARM's work measured on
 * an x86 host (tools/arm-count.sh), since there is no ARM machine to time on. Debian 12's qemu-user
 * (7.2) loads plugins but ships neither qemu-plugin.h nor sample plugins, so the few plugin API v1
 * declarations used here are written out by hand to match QEMU 7.2's ABI.
 *
 *   gcc -O2 -shared -fPIC -o qemu-insn-count.so tools/qemu-insn-count.c
 *   qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib \
 *       -plugin ./qemu-insn-count.so,out=COUNT_FILE ./prog args...
 *
 * Prints "insns: N" to stderr at exit (and N to out=PATH): every executed guest instruction, all
 * threads summed with an atomic add per translated block (inline=on: QEMU's inline add, faster
 * but not atomic in 7.2, so only for single-threaded guests). The count includes the loader and
 * libc start-up: compare differences between runs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*vcpu_udata_cb_t)(unsigned int vcpu_index, void *udata);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *udata);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb_t);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, vcpu_udata_cb_t, enum qemu_plugin_cb_flags, void *);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb_t, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t total;      /* summed over all vCPUs */
static int use_inline;      /* inline=on: faster, but non-atomic (racy with >1 guest thread) */
static const char *out_path;

/* Default mode: per-TB helper call doing an atomic add -> exact for multi-threaded guests. */
static void tb_exec(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    __atomic_fetch_add(&total, (uint64_t)(uintptr_t)udata, __ATOMIC_RELAXED);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    if (use_inline)
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &total, n);
    else
        qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    uint64_t n = __atomic_load_n(&total, __ATOMIC_RELAXED);
    (void)id; (void)udata;
    fprintf(stderr, "insns: %llu\n", (unsigned long long)n);
    if (out_path) {
        FILE *f = fopen(out_path, "w");
        if (f) { fprintf(f, "%llu\n", (unsigned long long)n); fclose(f); }
        else fprintf(stderr, "insncount: cannot write %s\n", out_path);
    }
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "out=", 4))
            out_path = strdup(argv[i] + 4);
        else if (!strcmp(argv[i], "inline=on") || !strcmp(argv[i], "inline=true"))
            use_inline = 1;
        else if (!strcmp(argv[i], "inline=off") || !strcmp(argv[i], "inline=false"))
            use_inline = 0;
        else { fprintf(stderr, "insncount: unknown option %s\n", argv[i]); return -1; }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
