"""Prints file-level import cycles among the modules in src/ (crate:: and super::
paths; a child using its parent is not counted). Run from the repository root:
`python3 tools/import_cycles.py`; no output means no cycle."""
import re,glob,collections,sys,os
sys.setrecursionlimit(100000)
mods={}
for f in glob.glob('src/**/*.rs',recursive=True):
    p=f[4:-3].split('/')
    if p[-1] in('mod','lib','main'): p=p[:-1]
    mods[tuple(p)]=f
def resolve(path):
    # deepest prefix that is a module
    for n in range(len(path),0,-1):
        if tuple(path[:n]) in mods: return tuple(path[:n])
    return None
edges=collections.defaultdict(set)
for m,f in mods.items():
    src=re.split(r'#\[cfg\(test\)\]',open(f).read())[0]
    src='\n'.join(l for l in src.split('\n') if not l.strip().startswith('//'))
    # expand use groups shallowly: crate::a::{b, c::d}
    for base,group in re.findall(r'(crate(?:::[a-z_]+)*)::\{([^}]*)\}',src):
        for item in group.split(','):
            item=item.strip().split(' as ')[0]
            if not item: continue
            path=base.split('::')[1:]+item.split('::')
            r=resolve([x for x in path if x!='self'])
            if r and r!=m and not (r==m[:len(r)]): edges[m].add(r)
    for path in re.findall(r'crate((?:::[A-Za-z_]+)+)',src):
        r=resolve(path.split('::')[1:])
        if r and r!=m and not (r==m[:len(r)]): edges[m].add(r)
    # super:: relative
    isdir=f.endswith('mod.rs')
    parent=m if isdir else m[:-1]
    for sup,path in re.findall(r'((?:super::)+)([A-Za-z_:]+)',src):
        k=sup.count('super::')
        base=list(m[:len(m)-k])
        items=path.split('::')
        r=resolve(base+items)
        if r and r!=m and not (r==m[:len(r)]): edges[m].add(r)
idx={};low={};st=[];on=set();res=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges.get(v,()):
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(comp)
for v in list(mods):
    if v not in idx: sc(v)
for r in res:
    print(len(r), sorted('::'.join(x) for x in r))
    rs=set(r)
    for a in sorted(r):
        for b in sorted(edges[a]):
            if b in rs: print('   ','::'.join(a),'->','::'.join(b))
sys.exit(1 if res else 0)
