use std::io::BufRead;
use std::time::Instant;
use regorus::{Engine, Value};

fn main() {
    let bundle = vigil::policy::Bundle::read(std::path::Path::new(&std::env::var("PDIR").unwrap_or("policies".into())), false).unwrap();
    let mut engine = Engine::new();
    for (rel, text) in &bundle.modules { engine.add_policy(rel.clone(), text.clone()).unwrap(); }
    let data: Value = serde_json::from_value(bundle.data.clone()).unwrap();
    engine.add_data(data.clone()).unwrap();
    let inputs: Vec<Value> = std::io::BufReader::new(std::fs::File::open("/tmp/inputs.jsonl").unwrap()).lines().take(1000).map(|l| Value::from_json_str(&l.unwrap()).unwrap()).collect();
    let mut eps: Vec<String> = engine.get_packages().unwrap().into_iter().filter(|p| p.starts_with("data.vigil.rules.")).map(|p| format!("{p}.findings")).collect();
    eps.push("data.vigil.response.findings".into());
    eps.push("data.vigil.main.decisions".into());
    eps.push("data.vigil.lib.login".into());
    if std::env::var("ONLY").is_ok() { for _ in 0..5 { for i in &inputs { engine.set_input(i.clone()); let _ = engine.eval_rule("data.vigil.rules.failed_signins.cfg".into()).unwrap(); } } return; }
    for ep in &eps {
        let t = Instant::now();
        for i in &inputs { engine.set_input(i.clone()); let _ = engine.eval_rule(ep.to_string()).unwrap(); }
        println!("{ep}: {:?}/eval", t.elapsed() / inputs.len() as u32);
    }
    let mut e3 = engine.clone(); e3.add_policy("q.rego".into(), "package zzz\nimport data.vigil.lib\nw := lib.login".into()).unwrap();
    e3.add_policy("y.rego".into(), "package vigil.rules.zz\ny := data.vigil.config.failed_signins.threshold\nz := data.vigil.lib.config.failed_signins".into()).unwrap();
    for ep in ["data.zzz.w", "data.vigil.lib.is_protected", "data.vigil.lib.actor_trusted", "data.vigil.lib.on_vpn", "data.vigil.lib.client", "data.vigil.lib.target_names","data.vigil.lib.target_summary","data.vigil.lib.actor_name","data.vigil.lib.protected_account","data.vigil.lib.debug_data","data.vigil.lib.config","data.vigil.lib.event_user_agent","data.vigil.lib.delayed_suspend","data.vigil.lib.step_up"] {
    let t = Instant::now();
    for i in &inputs { e3.set_input(i.clone()); let _ = e3.eval_rule(ep.into()).unwrap(); }
    println!("{ep} config lookup: {:?}/eval", t.elapsed() / inputs.len() as u32);
    }
    let mut e2 = Engine::new();
    e2.add_policy("x.rego".into(), "package x\ny := input.event.uuid".into()).unwrap();
    let t = Instant::now();
    for i in &inputs { e2.set_input(i.clone()); let _ = e2.eval_rule("data.x.y".into()).unwrap(); }
    println!("trivial: {:?}/eval", t.elapsed() / inputs.len() as u32);
}
