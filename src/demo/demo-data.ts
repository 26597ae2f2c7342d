import Database from 'better-sqlite3';

/**
 * The guest-house registry of the original system: its seven tables (PRAGMA user_version = 9), the
 * indexes its guide recommends, and realistic rows in the original benchmark's proportions for N
 * registrations: N regs, N/2 stays, N/3 visit records, 4 settings, 10 maps, 100 rooms, N/10 bookings.
 */

export const ORIGINAL_SCHEMA = `
CREATE TABLE regs (            -- registered visitors; id is the national ID card number
  id TEXT PRIMARY KEY, first TEXT, last TEXT, dob TEXT, phone TEXT, addr TEXT, gender TEXT,
  hasIdCard INTEGER, status TEXT DEFAULT 'A',           -- 'A' active, 'I' soft-deleted
  createdAt TEXT, updatedAt TEXT);
CREATE TABLE reg_additional_info (   -- one row per visit: lent items, dates, notes
  id INTEGER PRIMARY KEY AUTOINCREMENT, regId TEXT NOT NULL, visitId TEXT NOT NULL,
  startDate TEXT, endDate TEXT, shirtCount INTEGER DEFAULT 0, pantsCount INTEGER DEFAULT 0,
  matCount INTEGER DEFAULT 0, pillowCount INTEGER DEFAULT 0, blanketCount INTEGER DEFAULT 0,
  location TEXT, withChildren INTEGER DEFAULT 0, childrenCount INTEGER DEFAULT 0, notes TEXT,
  createdAt TEXT, updatedAt TEXT,
  FOREIGN KEY (regId) REFERENCES regs (id) ON DELETE CASCADE, UNIQUE(regId, visitId));
CREATE TABLE stays (
  id INTEGER PRIMARY KEY AUTOINCREMENT, visitor_id TEXT NOT NULL, start_date TEXT NOT NULL,
  end_date TEXT NOT NULL, status TEXT DEFAULT 'active', note TEXT,
  created_at TEXT DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY (visitor_id) REFERENCES regs (id) ON DELETE CASCADE);
CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL,
  updated_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE maps (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, image_path TEXT, image_width REAL,
  image_height REAL, is_active INTEGER DEFAULT 0, description TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE rooms (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, size TEXT NOT NULL,
  shape TEXT DEFAULT 'square', capacity INTEGER NOT NULL, position_x REAL, position_y REAL,
  status TEXT DEFAULT 'available', description TEXT, current_occupant TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  FOREIGN KEY (current_occupant) REFERENCES regs (id) ON DELETE SET NULL);
CREATE TABLE room_bookings (
  id INTEGER PRIMARY KEY AUTOINCREMENT, room_id INTEGER NOT NULL, visitor_id TEXT NOT NULL,
  check_in_date TEXT NOT NULL, check_out_date TEXT NOT NULL, status TEXT DEFAULT 'pending',
  note TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  FOREIGN KEY (room_id) REFERENCES rooms (id) ON DELETE CASCADE,
  FOREIGN KEY (visitor_id) REFERENCES regs (id) ON DELETE CASCADE);
CREATE INDEX idx_stays_visitor_id ON stays(visitor_id);
CREATE INDEX idx_stays_date_range ON stays(start_date, end_date);
CREATE INDEX idx_rooms_status ON rooms(status);
CREATE INDEX idx_rooms_position ON rooms(position_x, position_y);
CREATE INDEX idx_room_bookings_room_id ON room_bookings(room_id);
CREATE INDEX idx_room_bookings_visitor_id ON room_bookings(visitor_id);
CREATE INDEX idx_room_bookings_dates ON room_bookings(check_in_date, check_out_date);
CREATE INDEX idx_regs_phone ON regs(phone);
CREATE INDEX idx_regs_status ON regs(status);
`;

const THAI_FIRST = ['สมชาย', 'สมหญิง', 'วิชัย', 'สุดา', 'ประเสริฐ', 'มาลี', 'อนันต์', 'กาญจนา', 'ธนพล', 'ปราณี', 'สุรชัย', 'นภา', 'พระมหาสมปอง', 'แม่ชีศรี', 'ชัยวัฒน์', 'รัตนา'];
const THAI_LAST = ['ใจดี', 'รักษ์ไทย', 'ศรีสุข', 'บุญมา', 'แก้วประเสริฐ', 'สุขสวัสดิ์', 'ทองคำ', 'พงษ์ไพบูลย์', 'วงศ์สวัสดิ์', 'จันทร์เพ็ญ'];
const EN_FIRST = ['John', 'Mary', 'Anna', 'Peter', "O'Brien", 'Zoë', 'José', 'Chloé', 'Liam', 'Sakura'];
const EN_LAST = ['Smith', 'Müller', "D'Angelo", 'Nguyen', 'Johansson', 'García', 'Kowalski', 'Tanaka'];
const PROVINCES = ['กรุงเทพมหานคร', 'เชียงใหม่', 'ขอนแก่น', 'นครราชสีมา', 'ภูเก็ต', 'สุราษฎร์ธานี', 'Bangkok', 'Chiang Mai'];
const NOTES = [
  'มาปฏิบัติธรรม 7 วัน',
  'แพ้อาหารทะเล\nต้องการอาหารมังสวิรัติ',
  'Arrived late, said "thank you" twice',
  "Needs a quiet room; can't climb stairs",
  'ขอยืมหมอนเพิ่ม 1 ใบ\r\nคืนแล้ว',
  'Back-slash \\ test, tab\there',
  '',
  'เด็ก 2 คน 👶👶',
];
const LOCATIONS = ['ศาลาใหญ่', 'กุฏิ 3', 'Hall B', 'เรือนรับรอง', 'Tent area'];

/** A small deterministic PRNG (mulberry32), so the same N always gives the same database. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoOptions {
  /** Registrations (the original benchmark's "records"); other tables follow in proportion. */
  records: number;
  seed?: number;
}

/** Row counts the demo writes for `records` registrations. */
export function demoRowCounts(records: number): Record<string, number> {
  return {
    regs: records,
    reg_additional_info: Math.floor(records / 3),
    stays: Math.floor(records / 2),
    app_settings: 4,
    maps: 10,
    rooms: 100,
    room_bookings: Math.floor(records / 10),
  };
}

/** Creates `file` (which must not exist) with the original schema and demo rows; returns total rows. */
export function createDemoDatabase(file: string, options: DemoOptions): number {
  const rnd = prng(options.seed ?? 20240101);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const date = (y0: number, y1: number): string =>
    `${int(y0, y1)}-${String(int(1, 12)).padStart(2, '0')}-${String(int(1, 28)).padStart(2, '0')}`;
  const stamp = (): string => `${date(2022, 2025)}T${String(int(0, 23)).padStart(2, '0')}:${String(int(0, 59)).padStart(2, '0')}:00.000`;
  const counts = demoRowCounts(options.records);

  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.exec(ORIGINAL_SCHEMA);
    db.pragma('user_version = 9');
    const ids: string[] = new Array(counts.regs);
    db.transaction(() => {
      const settings = db.prepare("INSERT INTO app_settings (key, value, updated_at) VALUES (?, ?, '2024-01-01 00:00:00')");
      settings.run('menu_white_robe_enabled', 'false');
      settings.run('menu_booking_enabled', 'false');
      settings.run('menu_schedule_enabled', 'true');
      settings.run('menu_summary_enabled', 'true');

      const reg = db.prepare('INSERT INTO regs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      const seen = new Set<string>();
      for (let i = 0; i < counts.regs; i++) {
        let id: string;
        do id = String(1_000_000_000_000 + Math.floor(rnd() * 8_999_999_999_999)); while (seen.has(id));
        seen.add(id);
        ids[i] = id;
        const thai = rnd() < 0.8;
        const created = stamp();
        reg.run(
          id,
          thai ? pick(THAI_FIRST) : pick(EN_FIRST),
          thai ? pick(THAI_LAST) : pick(EN_LAST),
          date(1940, 2010),
          rnd() < 0.9 ? `0${int(6, 9)}${int(1000, 9999)}${int(1000, 9999)}` : null,
          `${int(1, 999)}/${int(1, 99)} ${pick(PROVINCES)}`,
          rnd() < 0.5 ? 'M' : 'F',
          rnd() < 0.85 ? 1 : 0,
          rnd() < 0.95 ? 'A' : 'I',
          created,
          created,
        );
      }
      const info = db.prepare(
        'INSERT INTO reg_additional_info (regId, visitId, startDate, endDate, shirtCount, pantsCount, matCount, pillowCount, blanketCount, location, withChildren, childrenCount, notes, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      for (let i = 0; i < counts.reg_additional_info; i++) {
        const kids = rnd() < 0.1 ? int(1, 3) : 0;
        const start = date(2023, 2025);
        info.run(ids[(i * 3) % ids.length], `V${i}`, start, start, int(0, 3), int(0, 3), int(0, 1), int(0, 2), int(0, 2),
          pick(LOCATIONS), kids > 0 ? 1 : 0, kids, pick(NOTES), stamp(), stamp());
      }
      const stay = db.prepare('INSERT INTO stays (visitor_id, start_date, end_date, status, note, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      for (let i = 0; i < counts.stays; i++) {
        const start = date(2023, 2025);
        stay.run(pick(ids), start, start, rnd() < 0.7 ? 'completed' : 'active', rnd() < 0.4 ? pick(NOTES) : null, stamp());
      }
      const map = db.prepare('INSERT INTO maps (name, image_path, image_width, image_height, is_active, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
      for (let i = 0; i < counts.maps; i++) {
        map.run(`แผนผัง ${i + 1}`, `/maps/${i + 1}.png`, 1024 + i * 0.5, 768.25, i === 0 ? 1 : 0, 'Floor plan "main"', stamp(), stamp());
      }
      const room = db.prepare('INSERT INTO rooms (name, size, shape, capacity, position_x, position_y, status, description, current_occupant, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      for (let i = 0; i < counts.rooms; i++) {
        room.run(`ห้อง ${i + 1}`, pick(['S', 'M', 'L']), pick(['square', 'round']), int(1, 8), rnd() * 1000, rnd() * 700,
          rnd() < 0.6 ? 'available' : 'occupied', null, rnd() < 0.4 && ids.length ? pick(ids) : null, stamp(), stamp());
      }
      const booking = db.prepare('INSERT INTO room_bookings (room_id, visitor_id, check_in_date, check_out_date, status, note, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
      for (let i = 0; i < counts.room_bookings; i++) {
        const start = date(2023, 2025);
        booking.run(int(1, counts.rooms), pick(ids), start, start, pick(['pending', 'confirmed', 'cancelled']), rnd() < 0.3 ? pick(NOTES) : null, stamp(), stamp());
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
