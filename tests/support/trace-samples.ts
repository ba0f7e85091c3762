/**
 * Small sample files in the formats users already have, written here: an Nsight Systems
 * SQLite export (built with sql.js, as nsys lays out its tables) and a uvm-eval driver log.
 */
import { sqlJs } from '../../src/trace/load.js';

export const UVM_EVAL_SAMPLE = [
  's,',
  'f,0x7f0000000000,1000,1,1,0,0,0,0,0,0,3,0,2,0',
  'f,0x7f0000001000,1100,1,2,0,0,0,0,0,0,3,0,2,0',
  'f,0x7f0000001000,1150,1,1,0,0,0,0,0,0,4,1,2,0',
  'b,52000,0',
  's,',
  'f,0x7f0000005000,90000,3,2,0,0,0,0,0,0,1,0,2,0',
  'b,41000,0',
].join('\n');

/** A small Nsight Systems export: the fault table (and UM memcpys) as nsys writes them. */
export async function nsightSample(rows: (number | string | null)[][] = [
  [1000, 2000, 0x7f0000000000, 1, 1], [1500, 2600, 0x7f0000002000, 3, 2], [3000, 3900, 0x7f0000001000, 2, 1],
]): Promise<Uint8Array> {
  const SQL = await sqlJs();
  const db = new SQL.Database();
  db.run('CREATE TABLE CUDA_UM_GPU_PAGE_FAULT_EVENTS (id INTEGER PRIMARY KEY, start INTEGER NOT NULL, "end" INTEGER NOT NULL, globalPid INTEGER, deviceId INTEGER, address INTEGER NOT NULL, numberOfPageFaults INTEGER, faultAccessType INTEGER)');
  for (const r of rows) db.run('INSERT INTO CUDA_UM_GPU_PAGE_FAULT_EVENTS (start, "end", globalPid, deviceId, address, numberOfPageFaults, faultAccessType) VALUES (?, ?, 1, 0, ?, ?, ?)', [r[0], r[1], r[2], r[3], r[4]]);
  db.run('CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER, "end" INTEGER, copyKind INTEGER, bytes INTEGER)');
  db.run('INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (10, 20, 11, 4096), (30, 40, 12, 4096), (50, 60, 12, 8192), (70, 80, 1, 64)');
  const bytes = db.export();
  db.close();
  return bytes;
}

