#!/usr/bin/env python3
"""sipaudit on Apache Spark: one batch of captures analysed across executors
(README "Running on Spark", docs/DESIGN.md "Scale-out", docs/records.md).

    spark-submit --master yarn --files target/release/sipaudit \\
        scripts/spark/sipaudit_spark.py --inputs inputs.txt --partitions 64 --out reports/
    spark-submit --master 'local[2]' scripts/spark/sipaudit_spark.py \\
        --binary target/release/sipaudit --inputs inputs.txt --partitions 4 --out reports/

Steps (every one of them runs the sipaudit binary, shipped with the job):
1. map: one task per input file (Spark's binaryFile source, so local paths,
   hdfs://, s3a://... whatever the cluster's Hadoop file systems read). The
   task writes the file to its local disk, runs `sipaudit extract-records` on
   it and returns (mapInArrow) its message records split by partition
   `partition_of(partition_key, N)`: with --shuffle chunks (default) one row
   per partition holding those records as a records file; with --shuffle rows
   one Spark row per message. Plus one row holding the file's facts (the
   records file's metadata: packet accounting, decoding anomalies), and
   (--shuffle chunks) one row holding its routing columns.
   routes: the driver collects the routing columns of every record (9
   columns: frame, seq, time, partition key, status, method, Session-ID,
   icid-value, X-CID), runs `sipaudit route-records` over them (the one
   sequential pass of the job: B2BUA/AS legs whose first leg has another
   partition key), and the records it moves go to the partition of their
   home instead of their own (chunks re-split, rows re-keyed by a join).
2. shuffle: Spark groups the records by partition (groupBy + applyInArrow:
   Spark's shuffle, no shared file system needed between tasks).
3. reduce: one task per partition K writes its records as records files, each
   input's in its capture order (file, frame, seq), with the facts of every
   input, runs `sipaudit analyze --records --partition K/N --routes R` and returns the
   partition's reports (the binary merges the inputs by capture time).
4. merge: the driver writes each partition's reports to --work and runs
   `sipaudit merge-reports` into --out.

Inputs: a list file (one capture file's path or URI a line, not directories;
blank lines and # comments skipped), read with Spark (so it may itself be on HDFS/S3). Each input is
read whole into memory by its map task (Spark's binaryFile source: at most
2 GB a file). Reports are named by each input as written in the list, so a
list of local paths gives the reports `sipaudit analyze` gives on the same
paths. --out and --work are local paths on the driver.
"""

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

RECORDS_SUFFIX = ".records.parquet"
VERSION_KEY = b"sipaudit.records.version"
INPUT_KEY = b"sipaudit.records.input"
# The reports a partition run writes that merge-reports reads.
PARTITION_REPORTS = ["partition.jsonl", "sessions.csv", "failures.csv", "summary.csv", "inputs.csv"]
BINARY = "sipaudit"
# What route-records reads of a records file (records::read::ROUTING_COLUMNS).
ROUTING_COLUMNS = ["frame", "seq", "ts_ns", "partition_key", "status", "method",
                   "link_session_id", "link_icid", "link_x_cid"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--inputs", required=True, help="list file: one capture path or URI a line")
    p.add_argument("--partitions", type=int, required=True, help="N: reduce partitions")
    p.add_argument("--out", required=True, help="directory for the merged reports (driver-local)")
    p.add_argument("--work", help="driver-local directory for the partitions' reports (default: a temporary one)")
    p.add_argument("--binary", help="the sipaudit binary on the driver (default: shipped with --files sipaudit)")
    p.add_argument("--policy", help="policy file (driver-local), as analyze --policy")
    p.add_argument("--format", default="csv", help="report formats for the merged reports (csv,parquet)")
    p.add_argument(
        "--shuffle",
        choices=["chunks", "rows"],
        default="chunks",
        help="what Spark shuffles: per input and partition, one row holding those records as a records file "
        "(chunks, default), or one Spark row per SIP message (rows: a DataFrame analysts can query, much slower)",
    )
    return p.parse_args(argv)


def local_binary(name=BINARY):
    """The binary shipped with the job, executable, in this process."""
    from pyspark import SparkFiles

    path = SparkFiles.get(name)
    mode = os.stat(path).st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def run(cmd, what):
    """Runs the binary; exit 0, or 1 (some input had read errors: reported
    in inputs.csv, as analyze does), is success."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode not in (0, 1):
        raise RuntimeError(f"{what}: {' '.join(cmd)} exited {r.returncode}: {r.stderr.decode(errors='replace')}")
    return r


def partition_of(keys, n):
    """dialog::partition_of over a uint64 array: the high 64 bits of
    key * n, computed in 32-bit halves (exact for n < 2^31)."""
    import numpy as np

    k = keys.astype(np.uint64)
    hi, lo = k >> np.uint64(32), k & np.uint64(0xFFFFFFFF)
    n = np.uint64(n)
    return ((hi * n + ((lo * n) >> np.uint64(32))) >> np.uint64(32)).astype(np.int32)


def spark_type(t):
    """Arrow type of a records column as Spark can hold it: unsigned
    integers become the next signed type, uint64 its bit pattern as int64."""
    import pyarrow as pa

    if pa.types.is_list(t):
        return pa.list_(spark_type(t.value_type))
    return {pa.uint64(): pa.int64(), pa.uint32(): pa.int64(), pa.uint16(): pa.int32()}.get(t, t)


def to_spark(table, schema):
    """Records `table` cast to `schema` (spark_type of each column)."""
    import pyarrow as pa

    cols = [table.column(f.name).cast(f.type, safe=False) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def mapped_schema(records_schema):
    """The map step's output: every records column in its Spark type,
    nullable, then `part` and `meta`."""
    import pyarrow as pa

    fields = [pa.field(f.name, spark_type(f.type), True) for f in records_schema]
    return pa.schema(fields + [pa.field("part", pa.int32(), True), pa.field("meta", pa.string(), True)])


def extract_local(binary, name, data, tmp):
    """Runs extract-records on input `name` (its bytes `data`) in `tmp`:
    the records file's path, the local copy's path, and the metadata with
    the input named as listed (the reports name it so)."""
    import pyarrow.parquet as pq

    src_dir = os.path.join(tmp, "in")
    os.makedirs(src_dir, exist_ok=True)
    local = os.path.join(src_dir, os.path.basename(name.rstrip("/")) or "input")
    with open(local, "wb") as f:
        f.write(data)
    rec = os.path.join(tmp, "rec")
    run([binary, "extract-records", "-j", "1", "-o", rec, local], f"extract-records {name}")
    (path,) = [os.path.join(rec, p) for p in os.listdir(rec) if p.endswith(RECORDS_SUFFIX)]
    kv = pq.ParquetFile(path).metadata.metadata
    facts = json.loads(kv[INPUT_KEY])
    # Named as listed, not as the task's local copy.
    facts["error"] = facts.get("error", "").replace(local, name)
    facts["file"] = name
    return path, {"version": kv[VERSION_KEY].decode(), "facts": facts}


def facts_row(name, meta, schema):
    """The row that carries an input's facts (`part` -1)."""
    import pyarrow as pa

    row = {f.name: pa.nulls(1, f.type) for f in schema}
    row["file"] = pa.array([name], pa.string())
    row["part"] = pa.array([FACTS_PART], pa.int32())
    row["meta"] = pa.array([json.dumps(meta)], pa.string())
    return pa.Table.from_pydict(row, schema=schema).to_batches()


# `part` of the rows that are not records: an input's facts, its routing columns.
FACTS_PART, ROUTING_PART = -1, -2


def split_chunks(name, table, keys, n, out_schema):
    """One row (K, file, blob) per partition K of `keys` (the records' home
    keys, uint64) whose blob is a records file of those rows of `table`, in
    their order, with its metadata."""
    import io
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    part = pa.array(partition_of(keys.to_numpy(), n), pa.int32())
    for k in sorted(set(part.to_pylist())):
        buf = io.BytesIO()
        pq.write_table(table.filter(pc.equal(part, k)), buf, compression="zstd")
        yield from pa.Table.from_pydict(
            {"part": [k], "file": [name], "meta": pa.nulls(1, pa.string()), "blob": [buf.getvalue()]},
            schema=out_schema,
        ).to_batches()


def homes(table, moved):
    """The home key of every row of records `table`: its partition key, or
    the one `moved` ((frame, seq) -> home, from the routes) gives it."""
    import pyarrow as pa

    keys = table.column("partition_key").to_pylist()
    if moved:
        frames, seqs = table.column("frame").to_pylist(), table.column("seq").to_pylist()
        keys = [moved.get((f, s), k) for f, s, k in zip(frames, seqs, keys)]
    return pa.array(keys, pa.uint64())


def extract_chunks(binary, name, data, n, out_schema, tmp):
    """Map, `--shuffle chunks`: per partition K with records of this input,
    one row (K, file, blob) whose blob is a records file of those records
    (schema, order and metadata as extract-records wrote them); then the
    row of its routing columns (a records file of those columns) and the
    facts row."""
    import io
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, meta = extract_local(binary, name, data, tmp)
    table = pq.read_table(path)
    kv = {VERSION_KEY: meta["version"].encode()}
    kv[INPUT_KEY] = json.dumps(meta["facts"]).encode()
    table = table.set_column(table.schema.get_field_index("file"), table.schema.field("file"),
                             pa.array([name] * table.num_rows, pa.string()))
    table = table.replace_schema_metadata(kv)
    yield from split_chunks(name, table, table.column("partition_key"), n, out_schema)
    buf = io.BytesIO()
    pq.write_table(table.select(ROUTING_COLUMNS).replace_schema_metadata(kv), buf, compression="zstd")
    yield from pa.Table.from_pydict(
        {"part": [ROUTING_PART], "file": [name], "meta": pa.nulls(1, pa.string()), "blob": [buf.getvalue()]},
        schema=out_schema,
    ).to_batches()
    yield from facts_row(name, meta, out_schema)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, exist_ok=True)


def extract_rows(binary, name, data, n, out_schema, tmp):
    """Map, `--shuffle rows`: the records of one input as Arrow batches of
    `out_schema` (one Spark row per SIP message, with its partition), then
    the facts row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path, meta = extract_local(binary, name, data, tmp)
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=65536):
        t = pa.Table.from_batches([batch])
        t = t.set_column(t.schema.get_field_index("file"), "file", pa.array([name] * len(t), pa.string()))
        part = partition_of(t.column("partition_key").to_numpy(), n)
        t = to_spark(t, pa.schema(list(out_schema)[:-2]))
        t = t.append_column("part", pa.array(part, pa.int32()))
        t = t.append_column("meta", pa.nulls(len(t), pa.string()))
        yield from t.to_batches()
    yield from facts_row(name, meta, out_schema)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, exist_ok=True)


def rows_by_file(table, ctx):
    """`--shuffle rows`: partition K's records (Spark types) back in the
    records schema, each input's rows in its capture order (file, frame,
    seq: the order extract-records wrote them), by input name."""
    import pyarrow as pa

    if table is None or table.num_rows == 0:
        return {}
    schema = pa.ipc.read_schema(pa.py_buffer(ctx["schema"]))
    table = table.sort_by([("file", "ascending"), ("frame", "ascending"), ("seq", "ascending")])
    cols = [table.column(f.name).cast(f.type, safe=False) for f in schema]
    table = pa.Table.from_arrays(cols, schema=schema)
    files = table.column("file").to_pylist()
    out, start = {}, 0
    for i in range(1, len(files) + 1):
        if i == len(files) or files[i] != files[start]:
            out[files[start]] = table.slice(start, i - start)
            start = i
    return out


def chunks_file(blobs, path):
    """Writes the records files `blobs` (chunks of one input) as one, rows
    in the input's capture order (frame, seq), metadata of the first."""
    import io
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(blobs) == 1:
        with open(path, "wb") as f:
            f.write(blobs[0])
        return
    tables = [pq.read_table(io.BytesIO(b)) for b in blobs]
    kv = tables[0].schema.metadata
    t = pa.concat_tables(tables).sort_by([("frame", "ascending"), ("seq", "ascending")])
    pq.write_table(t.replace_schema_metadata(kv), path, compression="zstd")


def reduce_partition(binary, k, n, by_file, ctx, policy=None):
    """Reduce: partition K's reports from its records, `by_file` mapping an
    input's name to its rows (a pyarrow Table in the records schema) or to
    the records files (chunks) holding them (`--shuffle chunks`), and the
    facts of every input (an input without records in K gets a records
    file without rows: the reports count every input). The routes of the
    batch (ctx["routes"]) cut the partitions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.ipc.read_schema(pa.py_buffer(ctx["schema"]))
    tmp = tempfile.mkdtemp(prefix=f"sipaudit-reduce-{k}-")
    try:
        rec = os.path.join(tmp, "rec")
        os.makedirs(rec)
        for i, (name, meta) in enumerate(ctx["metas"]):
            path = os.path.join(rec, f"{i:08d}{RECORDS_SUFFIX}")
            rows = by_file.get(name)
            if isinstance(rows, list):
                chunks_file(rows, path)
                continue
            if rows is None:
                rows = pa.Table.from_batches([], schema=schema)
            kv = {VERSION_KEY: meta["version"].encode(), INPUT_KEY: json.dumps(meta["facts"]).encode()}
            pq.write_table(rows.replace_schema_metadata(kv), path, compression="zstd")
        out = os.path.join(tmp, "out")
        routes = os.path.join(tmp, "routes.tsv")
        with open(routes, "wb") as f:
            f.write(ctx["routes"])
        cmd = [binary, "analyze", "--records", "--no-html", "--partition", f"{k}/{n}", "--routes", routes,
               "-o", out]
        if policy:
            cmd += ["--policy", policy]
        run(cmd + [rec], f"analyze --partition {k}/{n}")
        reports = []
        for r in PARTITION_REPORTS:
            with open(os.path.join(out, r), "rb") as f:
                reports.append((r, f.read()))
        return reports
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def routing_files(mapped, shuffle, rschema, metas, out):
    """Writes the routing columns of every input's records to `out` as
    records files (one per input, with its metadata), for route-records."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    os.makedirs(out)
    index = {name: i for i, (name, _) in enumerate(sorted(metas.items()))}
    path = lambda name: os.path.join(out, f"{index[name]:08d}{RECORDS_SUFFIX}")
    if shuffle == "chunks":
        for r in mapped.filter(F.col("part") == ROUTING_PART).select("file", "blob").toLocalIterator():
            with open(path(r["file"]), "wb") as f:
                f.write(r["blob"])
        return
    t = mapped.filter(F.col("part") >= 0).select("file", *ROUTING_COLUMNS).toArrow()
    schema = pa.schema([rschema.field(c) for c in ROUTING_COLUMNS])
    for name, meta in metas.items():
        rows = t.filter(pc.equal(t.column("file"), name)).sort_by([("frame", "ascending"), ("seq", "ascending")])
        cols = [rows.column(f.name).cast(f.type, safe=False) for f in schema]
        kv = {VERSION_KEY: meta["version"].encode(), INPUT_KEY: json.dumps(meta["facts"]).encode()}
        pq.write_table(pa.Table.from_arrays(cols, schema=schema).replace_schema_metadata(kv), path(name),
                       compression="zstd")


def read_routes(path):
    """The moved records of a routes file: input name -> {(frame, seq): home}."""
    names, moved = [], {}
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            w = line.rstrip("\n").split("\t")
            if w[0] == "input":
                names.append(json.loads(w[2]))
                continue
            i, frame, seq, home = w
            moved.setdefault(names[int(i)], {})[(int(frame), int(seq))] = int(home, 16)
    return moved


def records_schema(binary):
    """The records schema of this sipaudit: extract-records of an empty
    pcap, on the driver."""
    import pyarrow.parquet as pq

    tmp = tempfile.mkdtemp(prefix="sipaudit-schema-")
    try:
        cap = os.path.join(tmp, "empty.pcap")
        with open(cap, "wb") as f:
            # pcap header: magic, v2.4, zone 0, sigfigs 0, snaplen 65535, Ethernet.
            f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
        run([binary, "extract-records", "-o", os.path.join(tmp, "rec"), cap], "extract-records (schema)")
        return pq.read_schema(os.path.join(tmp, "rec", "empty.pcap" + RECORDS_SUFFIX)).remove_metadata()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def qualified(spark, paths):
    """Each input path as Spark's binaryFile source names it."""
    jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
    out = {}
    for p in paths:
        hp = jvm.org.apache.hadoop.fs.Path(p)
        out[hp.getFileSystem(conf).makeQualified(hp).toString()] = p
    return out


def main(argv):
    a = parse_args(argv)
    from pyspark import SparkFiles, StorageLevel
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema
    import pyarrow as pa

    n = a.partitions
    if n < 1:
        sys.exit("--partitions must be at least 1")
    spark = SparkSession.builder.appName("sipaudit").getOrCreate()
    sc = spark.sparkContext
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    if a.binary:
        sc.addFile(os.path.abspath(a.binary))
    driver_binary = local_binary()
    policy = None
    if a.policy:
        sc.addFile(os.path.abspath(a.policy))
        policy = os.path.basename(a.policy)

    paths = [r.value.strip() for r in spark.read.text(a.inputs).collect()]
    paths = [p for p in paths if p and not p.startswith("#")]
    if not paths:
        sys.exit(f"{a.inputs}: no input listed")
    names = sc.broadcast(qualified(spark, paths))
    rschema = records_schema(driver_binary)
    if a.shuffle == "rows":
        out_schema, extract = mapped_schema(rschema), extract_rows
    else:
        out_schema, extract = pa.schema(
            [("part", pa.int32()), ("file", pa.string()), ("meta", pa.string()), ("blob", pa.binary())]
        ), extract_chunks

    def map_files(batches):
        binary = local_binary()
        tmp = tempfile.mkdtemp(prefix="sipaudit-map-")
        try:
            for b in batches:
                for path, content in zip(b.column("path").to_pylist(), b.column("content").to_pylist()):
                    name = names.value.get(path, path)
                    yield from extract(binary, name, content, n, out_schema, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    files = spark.read.format("binaryFile").load(paths).select("path", "content")
    mapped = files.mapInArrow(map_files, from_arrow_schema(out_schema)).persist(StorageLevel.DISK_ONLY)
    metas = {}
    for r in mapped.filter(F.col("part") == FACTS_PART).select("file", "meta").collect():
        metas[r["file"]] = json.loads(r["meta"])
    missing = [p for p in paths if p not in metas]
    if missing:
        sys.exit(f"no records for {missing} (binaryFile names them otherwise?)")
    work = a.work or tempfile.mkdtemp(prefix="sipaudit-spark-")
    os.makedirs(work, exist_ok=True)
    routing, routes = os.path.join(work, "routing"), os.path.join(work, "routes.tsv")
    shutil.rmtree(routing, ignore_errors=True)
    routing_files(mapped, a.shuffle, rschema, metas, routing)
    cmd = [driver_binary, "route-records", "-o", routes, routing]
    run(cmd + (["--policy", os.path.abspath(a.policy)] if a.policy else []), "route-records")
    moved = read_routes(routes)
    with open(routes, "rb") as f:
        routes_bytes = f.read()
    ctx = sc.broadcast(
        {
            # In the order analyze --records gives its inputs (by name).
            "metas": sorted(metas.items()),
            "schema": rschema.serialize().to_pybytes(),
            "routes": routes_bytes,
        }
    )

    def reduce_group(table):
        k = table.column("part")[0].as_py()
        pol = SparkFiles.get(policy) if policy else None
        if a.shuffle == "rows":
            by_file = rows_by_file(table.drop_columns(["part", "meta"]), ctx.value)
        else:
            by_file = {}
            for f, b in zip(table.column("file").to_pylist(), table.column("blob").to_pylist()):
                by_file.setdefault(f, []).append(b)
        reports = reduce_partition(local_binary(), k, n, by_file, ctx.value, pol)
        return pa.table(
            {
                "part": pa.array([k] * len(reports), pa.int32()),
                "name": [r for r, _ in reports],
                "content": pa.array([c for _, c in reports], pa.binary()),
            }
        )

    records = mapped.filter(F.col("part") >= 0)
    if moved and a.shuffle == "chunks":
        # Chunks of an input with moved records are split again by home.
        moved_bc = sc.broadcast(moved)

        def resplit(batches):
            import io
            import pyarrow.parquet as pq

            for b in batches:
                parts = b.column("part").to_pylist()
                for k, f, blob in zip(parts, b.column("file").to_pylist(), b.column("blob").to_pylist()):
                    m = moved_bc.value.get(f)
                    if not m:
                        row = {"part": [k], "file": [f], "meta": [None], "blob": [blob]}
                        yield from pa.Table.from_pydict(row, schema=out_schema).to_batches()
                        continue
                    t = pq.read_table(io.BytesIO(blob))
                    yield from split_chunks(f, t, homes(t, m), n, out_schema)

        records = records.mapInArrow(resplit, from_arrow_schema(out_schema))
    elif moved:
        # Rows: the moved ones get their home's partition.
        rows = [(f, fr, s, ((h * n) >> 64)) for f, m in moved.items() for (fr, s), h in m.items()]
        homes_df = spark.createDataFrame(rows, "file string, frame long, seq long, home_part int")
        records = (
            records.join(F.broadcast(homes_df), ["file", "frame", "seq"], "left")
            .withColumn("part", F.coalesce(F.col("home_part"), F.col("part")))
            .drop("home_part")
        )
    out_ddl = "part int, name string, content binary"
    reports = records.groupBy("part").applyInArrow(reduce_group, out_ddl).collect()
    mapped.unpersist()

    dirs = [os.path.join(work, f"partition-{k:05d}") for k in range(n)]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    done = set()
    for r in reports:
        done.add(r["part"])
        with open(os.path.join(dirs[r["part"]], r["name"]), "wb") as f:
            f.write(r["content"])
    # Partitions no record maps to still have their (session-less) reports.
    for k in sorted(set(range(n)) - done):
        pol = os.path.abspath(a.policy) if a.policy else None
        for name, content in reduce_partition(driver_binary, k, n, {}, ctx.value, pol):
            with open(os.path.join(dirs[k], name), "wb") as f:
                f.write(content)
    run([driver_binary, "merge-reports", "--format", a.format, "-o", a.out] + dirs, "merge-reports")
    print(
        f"sipaudit_spark: {len(paths)} inputs, {n} partitions ({len(done)} with records, shuffle {a.shuffle}); "
        f"reports in {a.out}"
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
