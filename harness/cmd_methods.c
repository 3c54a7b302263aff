// cmd_methods.c: `peftbench methods [NAME] [--json | --markdown]`: the method table as the
// descriptors define it (options with type, default, range or choices, help; site; what
// unfreezes; PEFT export). --markdown prints the reference section of docs/methods.md
// (tests/test_methods_doc.sh checks that the doc holds exactly this text).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../methods/method.h"

static const char *type_name(pb_opt_type t) {
    switch (t) {
    case PB_OPT_INT: return "int";
    case PB_OPT_NUM: return "number";
    case PB_OPT_BOOL: return "bool";
    case PB_OPT_ENUM: return "choice";
    default: return "list";
    }
}

static const char *site_name(pb_method_site s) { return s == PB_SITE_LINEAR ? "linear" : "none"; }

// "[1, 65536]", "[0, 1)", "kaiming|gaussian", "1-6 of query|key|..." or "".
static void allowed(const pb_method_opt *o, char *out, size_t n) {
    out[0] = 0;
    if (o->type == PB_OPT_INT || o->type == PB_OPT_NUM)
        snprintf(out, n, "[%.10g, %.10g%s", o->min, o->max, o->max_open ? ")" : "]");
    else if (o->type == PB_OPT_ENUM && o->choices) snprintf(out, n, "%s", o->choices);
    else if (o->type == PB_OPT_LIST && o->choices) snprintf(out, n, "%.0f-%.0f of %s", o->min, o->max, o->choices);
}

// "backbone, head (train_head)", "biases, head", ... in table order.
static const struct {
    unsigned bit;
    const char *name;
} unfreeze_names[] = {{PB_UNFREEZE_BACKBONE, "backbone"}, {PB_UNFREEZE_BIAS, "biases"},
                      {PB_UNFREEZE_NORM, "layernorms"}, {PB_UNFREEZE_HEAD, "head"}};

static void unfreeze_text(const pb_method_desc *d, char *out, size_t n) {
    size_t u = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof unfreeze_names / sizeof unfreeze_names[0] && u < n; i++) {
        if (!(d->unfreeze & unfreeze_names[i].bit)) continue;
        int opt = unfreeze_names[i].bit == PB_UNFREEZE_HEAD && pb_method_opt_find(d, "train_head");
        u += (size_t)snprintf(out + u, n - u, "%s%s%s", u ? ", " : "", unfreeze_names[i].name, opt ? " (train_head)" : "");
    }
    if (!out[0]) snprintf(out, n, "nothing besides its own parameters");
}

static cJSON *desc_json(const pb_method_desc *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "summary", d->summary);
    cJSON_AddStringToObject(o, "reference", d->reference ? d->reference : "");
    cJSON_AddStringToObject(o, "site", site_name(d->site));
    cJSON *u = cJSON_AddArrayToObject(o, "unfreezes");
    for (size_t i = 0; i < sizeof unfreeze_names / sizeof unfreeze_names[0]; i++)
        if (d->unfreeze & unfreeze_names[i].bit) cJSON_AddItemToArray(u, cJSON_CreateString(unfreeze_names[i].name));
    cJSON_AddBoolToObject(o, "rank_rule", d->rank_limit != NULL);
    cJSON_AddBoolToObject(o, "peft_export", d->export_peft != NULL);
    if (d->import_peft && d->peft_type) cJSON_AddStringToObject(o, "peft_import", d->peft_type); // the type it reads
    else cJSON_AddNullToObject(o, "peft_import");
    if (d->events) cJSON_AddStringToObject(o, "events", d->events);
    else cJSON_AddNullToObject(o, "events");
    cJSON *opts = cJSON_AddArrayToObject(o, "options");
    for (int i = 0; i < d->nopts; i++) {
        const pb_method_opt *p = &d->opts[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", p->key);
        cJSON_AddStringToObject(x, "type", type_name(p->type));
        cJSON_AddItemToObject(x, "default", pb_method_opt_default_json(p));
        if (p->type == PB_OPT_INT || p->type == PB_OPT_NUM || p->type == PB_OPT_LIST) {
            cJSON_AddNumberToObject(x, "min", p->min);
            cJSON_AddNumberToObject(x, "max", p->max);
        }
        if (p->type == PB_OPT_NUM) cJSON_AddBoolToObject(x, "max_exclusive", p->max_open);
        if (p->choices) {
            cJSON *c = cJSON_AddArrayToObject(x, "choices");
            char buf[256];
            snprintf(buf, sizeof buf, "%s", p->choices);
            for (char *s = NULL, *t = strtok_r(buf, "|", &s); t; t = strtok_r(NULL, "|", &s))
                cJSON_AddItemToArray(c, cJSON_CreateString(t));
        }
        cJSON_AddStringToObject(x, "help", p->help);
        cJSON_AddItemToArray(opts, x);
    }
    return o;
}

static void print_text(const pb_method_desc *d) {
    char u[128];
    unfreeze_text(d, u, sizeof u);
    printf("%s — %s\n  site %s; unfreezes %s%s%s%s%s\n  reference: %s\n", d->name, d->summary, site_name(d->site), u,
           d->export_peft ? "; PEFT export" : "", d->import_peft ? "; PEFT import of " : "",
           d->import_peft && d->peft_type ? d->peft_type : "", d->events ? "; counts events" : "", d->reference);
    for (int i = 0; i < d->nopts; i++) {
        const pb_method_opt *p = &d->opts[i];
        char a[256];
        allowed(p, a, sizeof a);
        printf("  %-11s %-7s default %-12s %s\n  %-11s %-7s %s\n", p->key, type_name(p->type), p->def, a, "", "",
               p->help);
    }
    printf("\n");
}

// Markdown: one table per method; escaped '|' in choices so tables keep their columns.
static void md_cell(const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", stdout);
        else putchar(*s);
    }
}

static void print_md(const pb_method_desc *const *r) {
    printf("| method | site | unfreezes | PEFT export | summary |\n|---|---|---|---|---|\n");
    for (int i = 0; r[i]; i++) {
        char u[128];
        unfreeze_text(r[i], u, sizeof u);
        printf("| `%s` | %s | %s | %s | ", r[i]->name, site_name(r[i]->site), u, r[i]->export_peft ? "yes" : "no");
        md_cell(r[i]->summary);
        printf(" |\n");
    }
    for (int i = 0; r[i]; i++) {
        printf("\n#### `%s` options\n\n", r[i]->name);
        if (!r[i]->nopts) {
            printf("No options.\n");
            continue;
        }
        printf("| option | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
        for (int k = 0; k < r[i]->nopts; k++) {
            const pb_method_opt *p = &r[i]->opts[k];
            char a[256];
            allowed(p, a, sizeof a);
            printf("| `%s` | %s | `%s` | ", p->key, type_name(p->type), p->def);
            md_cell(a);
            printf(" | ");
            md_cell(p->help);
            printf(" |\n");
        }
    }
}

int pb_cmd_methods(int argc, char **argv) {
    int json = 0, md = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--markdown")) md = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peftbench methods [NAME] [--json | --markdown]\n"
                   "  every method with its options (type, default, allowed values, help), where it\n"
                   "  attaches and what it unfreezes; --markdown: the table of docs/methods.md\n");
            return 0;
        } else if (argv[i][0] != '-' && !only) only = argv[i];
        else {
            fprintf(stderr, "peftbench methods: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    const pb_method_desc *const *r = pb_method_registry(NULL);
    const pb_method_desc *one[2] = {NULL, NULL};
    if (only) {
        one[0] = pb_method_find(only);
        if (!one[0]) {
            char known[512];
            pb_method_list(known, sizeof known);
            fprintf(stderr, "peftbench methods: unknown method '%s' (known: %s)\n", only, known);
            return 2;
        }
        r = one;
    }
    if (json) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; r[i]; i++) cJSON_AddItemToArray(a, desc_json(r[i]));
        char *s = cJSON_Print(a);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(a);
    } else if (md) {
        print_md(r);
    } else {
        for (int i = 0; r[i]; i++) print_text(r[i]);
    }
    return 0;
}
